"""The lm-eval model colasearch hands the harness: HFLM, with shared contexts run once and generation batched.

Multiple-choice tasks send one log-likelihood request per choice, all with the same context. HFLM
runs the whole context again for every choice (it only shares logits when every continuation is a
single token); here each distinct context runs once, and its choices continue from its KV cache: one
forward per batch of contexts, then their choices in a few forwards of similar lengths.
``generate_until`` batches prompts whose stop strings and token budgets differ: one ``model.generate``
per batch, each row stopping on its own strings and budget.

Both give what HFLM gives request by request: the same log-likelihoods (up to float rounding) and
greedy flags, the same generated text. The model may run a schedule: its cache slots are the
schedule's, so continuing from a cache is exactly what generation does.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from transformers import StoppingCriteria, StoppingCriteriaList

from colasearch.benchmark import cache_kwarg, new_cache

# What lm-eval sends per log-likelihood request: ((context, continuation) strings or None, context ids, continuation ids).
TokenRequest = tuple[tuple[str, str] | None, list[int], list[int]]
# Generation kwargs that differ row by row inside one batch; any other kwarg (sampling) splits batches.
PER_ROW_KWARGS = ("until", "max_gen_toks")


class ColasearchLM(HFLM):
    """HFLM around an already built (and possibly scheduled) model object."""

    # -- log-likelihood -------------------------------------------------------------------------

    def _loglikelihood_tokens(self, requests: list[TokenRequest], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        by_context: dict[tuple[int, ...], list[int]] = {}
        for index, (_, context, continuation) in enumerate(requests):
            if self._continues_from_cache(context, continuation):
                by_context.setdefault(tuple(context), []).append(index)
        shared = {context: indices for context, indices in by_context.items() if len(indices) > 1}
        in_shared = {index for indices in shared.values() for index in indices}
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        # Contexts seen once (and loglikelihood_rolling's windows) gain nothing from a cache: HFLM scores them.
        alone = [index for index in range(len(requests)) if index not in in_shared]
        if alone:
            answers = super()._loglikelihood_tokens([requests[index] for index in alone], disable_tqdm, override_bs)
            for index, answer in zip(alone, answers):
                results[index] = answer
        # Longest contexts first, as HFLM orders its requests: similar lengths share a batch, so little padding.
        contexts = sorted(shared, key=len, reverse=True)
        per_batch = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else len(contexts)
        for start in range(0, len(contexts), per_batch):
            chosen = contexts[start:start + per_batch]
            batch = [(list(context), [requests[index][2] for index in shared[context]]) for context in chosen]
            for context, answers in zip(chosen, self._score_from_contexts(batch)):
                for index, answer in zip(shared[context], answers):
                    results[index] = answer
                    if requests[index][0] is not None:
                        self.cache_hook.add_partial("loglikelihood", requests[index][0], answer)
        return results

    def _continues_from_cache(self, context: list[int], continuation: list[int]) -> bool:
        # A pair longer than the window is truncated from the left by HFLM, which cuts into the context; a
        # one-token context leaves nothing to cache.
        return (self.backend == "causal" and len(context) >= 2 and len(continuation) >= 1
                and len(context) + len(continuation) <= self.max_length + 1)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                              enabled=self.mixed_precision_dtype is not None)

    @torch.no_grad()
    def _score_from_contexts(self, batch: list[tuple[list[int], list[list[int]]]]) -> list[list[tuple[float, bool]]]:
        """Log-likelihood and greedy flag of each continuation after its context; every context runs once.

        One forward runs every context but its last token (left-padded) into a KV cache. Then rows
        [last context token, continuation[:-1]] (right-padded) continue from their context's cache row:
        the last context token's prediction scores each continuation's first token.
        """
        device, pad = self.device, self.tokenizer.pad_token_id or 0
        prefixes = [context[:-1] for context, _ in batch]
        width = max(len(prefix) for prefix in prefixes)
        prefix_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prefixes], device=device)
        cache = new_cache(self.model)  # from the model's config: a schedule's cache slots and layer types
        with self._autocast():
            self.model(torch.tensor([[pad] * (width - len(p)) + p for p in prefixes], device=device),
                       attention_mask=prefix_mask, position_ids=(prefix_mask.cumsum(-1) - 1).clamp(min=0),
                       use_cache=True, logits_to_keep=1, **{cache_kwarg(self.model): cache})  # only the cache is wanted
        # (context, choice) of every continuation, longest first. Choices run from one token to twenty:
        # a row joins the chunk before it while it is at least half as long as the chunk's first and the
        # chunk stays within the tokens of a plain batch of these contexts, so padding does not eat what
        # the cache saves.
        rows = sorted(((owner, choice) for owner, (_, continuations) in enumerate(batch)
                       for choice in range(len(continuations))), key=lambda row: -len(batch[row[0]][1][row[1]]))
        budget = max(len(context) for context, _ in batch) * len(batch)
        chunks: list[list[tuple[int, int]]] = []
        for owner, choice in rows:
            length = len(batch[owner][1][choice])
            if chunks:
                longest = len(batch[chunks[-1][0][0]][1][chunks[-1][0][1]])
                if 2 * length >= longest and (len(chunks[-1]) + 1) * longest <= budget:
                    chunks[-1].append((owner, choice))
                    continue
            chunks.append([(owner, choice)])
        answers: list[list] = [[None] * len(continuations) for _, continuations in batch]
        for chunk in chunks:
            for (owner, choice), answer in zip(chunk, self._continue(batch, prefix_mask, cache, chunk)):
                answers[owner][choice] = answer
        return answers

    def _continue(self, batch, prefix_mask: torch.Tensor, prefix_cache, rows) -> list[tuple[float, bool]]:
        """Score the continuations ``rows`` ((context, choice) pairs) from the contexts' cache."""
        device, pad = self.device, self.tokenizer.pad_token_id or 0
        owners = [owner for owner, _ in rows]
        continuations = [batch[owner][1][choice] for owner, choice in rows]
        cache = copy.deepcopy(prefix_cache)  # the forward appends to it in place; other rows need it as it is
        cache.batch_select_indices(torch.tensor(owners, device=device))
        longest = max(len(continuation) for continuation in continuations)
        # Right padding: a causal row never attends to the padding after it.
        inputs = torch.tensor([[batch[owner][0][-1], *continuation[:-1]] + [pad] * (longest - len(continuation))
                               for owner, continuation in zip(owners, continuations)], device=device)
        mask = prefix_mask[owners]
        with self._autocast():
            logits = self.model(inputs, attention_mask=torch.cat([mask, torch.ones_like(inputs)], dim=1),
                                position_ids=mask.sum(-1, keepdim=True) + torch.arange(longest, device=device),
                                use_cache=True, **{cache_kwarg(self.model): cache}).logits
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        answers = []
        for row, continuation in enumerate(continuations):
            scored = logprobs[row, :len(continuation)]
            targets = torch.tensor(continuation, device=scored.device)
            greedy = bool((scored.argmax(dim=-1) == targets).all())
            answers.append((float(scored.gather(1, targets[:, None]).sum()), greedy))
        return answers

    # -- generation -----------------------------------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        if self.backend != "causal" or self.think_end_token is not None or not isinstance(self.batch_size, int):
            return super().generate_until(requests, disable_tqdm)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        groups: dict[str, list[tuple[int, str, dict, list[str], int]]] = {}
        for index, request in enumerate(requests):
            context, gen_kwargs = request.args
            kwargs = normalize_gen_kwargs(dict(gen_kwargs), self.max_gen_toks)
            until = kwargs.pop("until", None)
            # handle_stop_sequences appends the end of text to the list it gets: never to the request's own.
            until = handle_stop_sequences(list(until) if isinstance(until, list) else until, eos=eos)
            max_gen_toks = kwargs.pop("max_gen_toks")
            kwargs = _greedy_unless_sampling(kwargs)  # so "do_sample: false" and "temperature: 0" batch together
            sampling = repr(sorted(kwargs.items()))
            groups.setdefault(sampling, []).append((index, context, kwargs, until, max_gen_toks))
        results: list[str | None] = [None] * len(requests)
        for rows in groups.values():
            # Longest first, as HFLM orders them: similar lengths share a batch, so little padding.
            rows.sort(key=lambda row: -len(self.tok_encode(row[1])))
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                for (index, context, _, _, _), text in zip(chunk, self._generate_batch(chunk)):
                    results[index] = text
                    self.cache_hook.add_partial("generate_until", requests[index].args, text)
        return results

    @torch.no_grad()
    def _generate_batch(self, rows) -> list[str]:
        prompts = []
        for _, context, _, _, max_gen_toks in rows:
            if self.max_length - max_gen_toks <= 0:
                raise ValueError(f"max_gen_toks {max_gen_toks} leaves no room for a prompt in {self.max_length} tokens")
            ids, _ = self.tok_batch_encode([context], left_truncate_len=self.max_length - max_gen_toks,
                                           truncation=self.truncation)
            prompts.append(ids[0].tolist())
        width = max(len(prompt) for prompt in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        stops = RowStops(self.tokenizer, width, [row[3] for row in rows], [row[4] for row in rows])
        kwargs = dict(rows[0][2])
        with self._autocast():
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                         max_new_tokens=max(row[4] for row in rows), pad_token_id=pad, use_cache=True,
                                         stopping_criteria=StoppingCriteriaList([stops]), **kwargs)
        texts = []
        for row, (_, _, _, until, max_gen_toks) in enumerate(rows):
            generated = output[row, width:].tolist()
            # A finished row is padded while the others go on; it ends where it stopped (or at its budget).
            end = min(max_gen_toks, stops.done_at[row] or len(generated))
            texts.append(postprocess_generated_text(self.tok_decode(generated[:end]), stop=until, think_end_token=None))
        return texts


class RowStops(StoppingCriteria):
    """Per row: done once its generated text holds one of its stop strings, or it has its token budget.

    ``done_at[row]`` is how many tokens the row had generated when it finished.
    """

    def __init__(self, tokenizer, prompt_width: int, stops: list[list[str]], budgets: list[int]):
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.stops = stops
        self.budgets = budgets
        self.done_at: list[int | None] = [None] * len(stops)

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        generated = input_ids.shape[1] - self.prompt_width
        for row, (stops, budget) in enumerate(zip(self.stops, self.budgets)):
            if self.done_at[row] is not None:
                continue
            text = self.tokenizer.decode(input_ids[row, self.prompt_width:], skip_special_tokens=False)
            if generated >= budget or any(stop and stop in text for stop in stops):
                self.done_at[row] = generated
        return torch.tensor([done is not None for done in self.done_at], dtype=torch.bool, device=input_ids.device)


def _greedy_unless_sampling(kwargs: dict) -> dict:
    """HFLM's reading of temperature and do_sample (``_model_generate``): temperature 0 means greedy."""
    kwargs["temperature"] = kwargs.get("temperature", 0.0)
    do_sample = kwargs.get("do_sample")
    if kwargs["temperature"] == 0.0 and do_sample is None:
        kwargs["do_sample"] = do_sample = False
    if do_sample is False and kwargs["temperature"] == 0.0:
        kwargs.pop("temperature", None)
    return kwargs

