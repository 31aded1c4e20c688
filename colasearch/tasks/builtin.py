"""Built-in tasks written for colasearch: generated deterministically, no download needed.

Each is multiple choice (four options, chance 25%), so it runs on the evaluator's fast path, and
each is phrased so that SmolLM2-135M-Instruct is well above chance (see BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import random

from colasearch.errors import TaskError
from colasearch.tasks.base import options_from
from colasearch.tasks.multiple_choice import MultipleChoiceOptions, MultipleChoiceTask, Question

# Countries and their capitals (the seat of government where the two differ, as commonly taught).
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "United Kingdom": "London", "Ireland": "Dublin", "Netherlands": "Amsterdam", "Belgium": "Brussels",
    "Austria": "Vienna", "Switzerland": "Bern", "Poland": "Warsaw", "Czech Republic": "Prague",
    "Hungary": "Budapest", "Greece": "Athens", "Sweden": "Stockholm", "Norway": "Oslo", "Denmark": "Copenhagen",
    "Finland": "Helsinki", "Iceland": "Reykjavik", "Russia": "Moscow", "Ukraine": "Kyiv", "Romania": "Bucharest",
    "Bulgaria": "Sofia", "Serbia": "Belgrade", "Croatia": "Zagreb", "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana", "Lithuania": "Vilnius", "Latvia": "Riga", "Estonia": "Tallinn", "Belarus": "Minsk",
    "Albania": "Tirana", "Turkey": "Ankara", "Cyprus": "Nicosia", "Malta": "Valletta", "Luxembourg": "Luxembourg",
    "Moldova": "Chisinau", "Georgia": "Tbilisi", "Armenia": "Yerevan", "Azerbaijan": "Baku",
    "United States": "Washington", "Canada": "Ottawa", "Mexico": "Mexico City", "Cuba": "Havana",
    "Jamaica": "Kingston", "Guatemala": "Guatemala City", "Honduras": "Tegucigalpa", "Nicaragua": "Managua",
    "Costa Rica": "San Jose", "Panama": "Panama City", "Colombia": "Bogota", "Venezuela": "Caracas",
    "Ecuador": "Quito", "Peru": "Lima", "Bolivia": "La Paz", "Chile": "Santiago", "Argentina": "Buenos Aires",
    "Uruguay": "Montevideo", "Paraguay": "Asuncion", "Brazil": "Brasilia", "China": "Beijing", "Japan": "Tokyo",
    "South Korea": "Seoul", "North Korea": "Pyongyang", "Mongolia": "Ulaanbaatar", "India": "New Delhi",
    "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu", "Sri Lanka": "Colombo",
    "Afghanistan": "Kabul", "Iran": "Tehran", "Iraq": "Baghdad", "Syria": "Damascus", "Lebanon": "Beirut",
    "Jordan": "Amman", "Israel": "Jerusalem", "Saudi Arabia": "Riyadh", "Yemen": "Sanaa", "Oman": "Muscat",
    "Qatar": "Doha", "Kuwait": "Kuwait City", "United Arab Emirates": "Abu Dhabi", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "Cambodia": "Phnom Penh", "Laos": "Vientiane", "Myanmar": "Naypyidaw",
    "Malaysia": "Kuala Lumpur", "Singapore": "Singapore", "Indonesia": "Jakarta", "Philippines": "Manila",
    "Kazakhstan": "Astana", "Uzbekistan": "Tashkent", "Egypt": "Cairo", "Libya": "Tripoli", "Tunisia": "Tunis",
    "Algeria": "Algiers", "Morocco": "Rabat", "Sudan": "Khartoum", "Ethiopia": "Addis Ababa", "Kenya": "Nairobi",
    "Uganda": "Kampala", "Tanzania": "Dodoma", "Rwanda": "Kigali", "Nigeria": "Abuja", "Ghana": "Accra",
    "Senegal": "Dakar", "Mali": "Bamako", "Niger": "Niamey", "Chad": "N'Djamena", "Cameroon": "Yaounde",
    "Angola": "Luanda", "Zambia": "Lusaka", "Zimbabwe": "Harare", "Mozambique": "Maputo", "Namibia": "Windhoek",
    "Botswana": "Gaborone", "South Africa": "Pretoria", "Madagascar": "Antananarivo", "Somalia": "Mogadishu",
    "Australia": "Canberra", "New Zealand": "Wellington", "Fiji": "Suva", "Papua New Guinea": "Port Moresby",
}

_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_LETTERS = [chr(code) for code in range(ord("A"), ord("Z") + 1)]
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def _shuffled_question(rng: random.Random, context: str, answer: str, distractors: list[str]) -> Question:
    options = [answer] + distractors[:3]
    rng.shuffle(options)
    return Question(context, tuple(options), options.index(answer))


def capitals_questions(seed: int = 0) -> list[tuple[str, Question]]:
    """Both directions: the capital of a country, and the country of a capital."""
    rng = random.Random(f"capitals-{seed}")
    countries = sorted(CAPITALS)
    questions = []
    for country in countries:
        others = rng.sample([name for name in countries if name != country], 3)
        capital = CAPITALS[country]
        questions.append((f"capital-of-{country}", _shuffled_question(
            rng, f"Question: What is the capital city of {country}?", capital, [CAPITALS[name] for name in others])))
        others = rng.sample([name for name in countries if name != country], 3)
        questions.append((f"country-of-{capital}", _shuffled_question(
            rng, f"Question: {capital} is the capital city of which country?", country, others)))
    return questions


ADDITION_SHOTS = "12 + 35 = 47\n41 + 8 = 49\n"


def addition_questions(count: int = 400, seed: int = 0) -> list[tuple[str, Question]]:
    """Two-digit sums after two worked examples; wrong options lie 3 to 30 away from the sum."""
    rng = random.Random(f"addition-{seed}")
    questions, seen = [], set()
    while len(questions) < count:
        left, right = rng.randint(10, 99), rng.randint(10, 99)
        if (left, right) in seen:
            continue
        seen.add((left, right))
        total = left + right
        wrong = rng.sample([value for value in range(total - 30, total + 31) if abs(value - total) > 2], 3)
        questions.append((f"add-{left}-{right}", _shuffled_question(
            rng, f"{ADDITION_SHOTS}{left} + {right} =", str(total), [str(value) for value in wrong])))
    return questions


def _sequence_items() -> list[tuple[str, list[str], str, list[str]]]:
    """(id, shown items, next item, wrong options to draw from); none of the wrong ones is shown."""
    cases = []
    for cycle, label in ((_DAYS, "days"), (_MONTHS, "months"), (_LETTERS, "letters"), (_NUMBER_WORDS, "words")):
        for start in range(len(cycle) - 4):
            shown, answer = cycle[start:start + 4], cycle[start + 4]
            pool = [item for item in cycle if item not in shown + [answer]]
            if len(pool) < 3:  # a week leaves two unseen days; months fill the options up
                pool += _MONTHS[:3 - len(pool)]
            cases.append((f"{label}-{start}", shown, answer, pool))
    for step in (1, 2, 3, 4, 5, 10):
        for start in range(1, 31):
            shown = [start + step * k for k in range(4)]
            answer = start + step * 4
            pool = [value for value in range(answer - 3 * step - 5, answer + 3 * step + 6)
                    if value not in shown and value != answer and value > 0]
            cases.append((f"step{step}-{start}", [str(value) for value in shown], str(answer), [str(v) for v in pool]))
    for start in range(1, 13):
        shown = [start * 2 ** k for k in range(4)]
        pool = [start * 12, start * 10, start * 16 + start, start * 24, start * 9]
        cases.append((f"double-{start}", [str(value) for value in shown], str(start * 16), [str(v) for v in pool]))
    return cases


def sequence_questions(seed: int = 0) -> list[tuple[str, Question]]:
    """The next item of a simple sequence (days, months, letters, number words, steps, doubling)."""
    rng = random.Random(f"sequence-{seed}")
    return [(f"seq-{item_id}", _shuffled_question(rng, ", ".join(shown) + ",", answer, rng.sample(pool, 3)))
            for item_id, shown, answer, pool in _sequence_items()]


BUILTIN_JOINS = {"capitals": "\nAnswer: ", "addition": " ", "sequence": " "}


BUILTIN_TASKS = {
    "capitals": capitals_questions,
    "addition": addition_questions,
    "sequence": sequence_questions,
}


def builtin_task(name: str, **options) -> MultipleChoiceTask:
    if name not in BUILTIN_TASKS:
        raise TaskError(f"unknown built-in task {name!r} (built-in: {', '.join(sorted(BUILTIN_TASKS))})")
    settings = options_from(MultipleChoiceOptions, options, f"builtin:{name}")
    questions = BUILTIN_TASKS[name]()
    # The items' digest, not a version number kept by hand: an edit to a generator changes the result key.
    return MultipleChoiceTask(name, questions, join=settings.join or BUILTIN_JOINS[name],
                              primary_metric=settings.primary_metric or "acc", max_length=settings.max_length,
                              source={"builtin": name, "items": questions_digest(questions)})


def questions_digest(questions: list[tuple[str, Question]]) -> str:
    """A digest of the items' ids and content, in order."""
    payload = [[item_id, question.context, list(question.choices), question.label] for item_id, question in questions]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:16]

