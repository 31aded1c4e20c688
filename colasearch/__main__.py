from colasearch.cli import main

main()
