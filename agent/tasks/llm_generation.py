"""Text generation against an OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama, hosted APIs).

`POST {base_url}/chat/completions` with the spec's prompt template; latency, time to first
token and inter-token latency (streaming), and token counts as the endpoint reports them.
The API key comes from the environment variable named by `api_key_env`, never from the spec;
with that variable unset the request goes without a key (local endpoints need none), and an
endpoint that asks for one fails the job with its own answer.

Metrics (times in seconds from sending the request):
- e2e_latency_seconds: until the last byte of the answer;
- ttft_seconds (streaming): until the first chunk carrying generated text;
- itl_{mean,p50,p90,p99,max}_seconds (streaming): gaps between chunks carrying generated text;
- input_tokens, output_tokens: the endpoint's usage report, null when it gives none;
- tokens_per_second: output tokens / e2e latency, null without usage;
- decode_tokens_per_second (streaming): (output tokens - 1) / (e2e latency - ttft).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from agent.redaction import mask_text
from agent.tasks import _chat, progress, register
from agent.tasks.base import Task, TaskError, TaskOutput
from common.models import ExperimentSpec, TaskType
from common.params import LlmParams

NO_USAGE = (
    "the endpoint reported no token usage: input_tokens, output_tokens and tokens_per_second "
    "are null (not estimated)"
)
PARTIAL_USAGE = "the endpoint's usage report has no {missing}: its count is null (not estimated)"
NOT_STREAMED = "not streamed: time to first token and inter-token latency need stream: true"
SAMPLING = ("max_tokens", "temperature", "top_p", "seed", "stop")


@register
class LlmGeneration(Task[LlmParams]):
    task_type = TaskType.LLM_GENERATION
    # No guard: one request and its answer, whatever the params; nothing grows with them.

    def execute(self, spec: ExperimentSpec, params: LlmParams) -> TaskOutput:
        api_key = self._api_key(params)
        url = completions_url(params.base_url)
        try:
            body = request_body(spec, params)
            progress.report(f"chat completion from {url}")
            exchange = _chat.chat(url, body, api_key, params.request_timeout_seconds)
        except TaskError as exc:
            message = _scrub(str(exc), api_key)
            if api_key is None and params.api_key_env and _refused_access(message):
                message += (
                    f" (no API key was sent: the variable {params.api_key_env} named by "
                    "api_key_env is not set where the agent runs)"
                )
            raise TaskError(message) from None
        metrics = _metrics(exchange)
        _log_exchange(exchange, metrics)
        return TaskOutput(
            output=_output(exchange, api_key),
            metrics=metrics,
            hardware_info={"endpoint": url},
            model_actual=exchange.model,
        )

    @staticmethod
    def _api_key(params: LlmParams) -> str | None:
        """The key in the variable named by api_key_env; None (no key sent) when it is unset."""
        name = params.api_key_env
        return (os.environ.get(name) or None) if name else None


def _log_exchange(exchange: _chat.Exchange, metrics: dict[str, Any]) -> None:
    parts = [f"answer of {exchange.model or 'the model'}: {exchange.e2e_seconds:.3f} s end to end"]
    if metrics.get("ttft_seconds") is not None:
        parts.append(f"first token after {metrics['ttft_seconds']:.3f} s")
    if metrics.get("output_tokens") is not None:
        parts.append(f"{metrics['output_tokens']} output tokens")
    if metrics.get("tokens_per_second") is not None:
        parts.append(f"{metrics['tokens_per_second']:.1f} tokens/s")
    progress.log.info("%s", ", ".join(parts))


def _refused_access(message: str) -> bool:
    return any(f"the endpoint answered HTTP {code}" in message for code in (401, 403))


def completions_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def request_body(spec: ExperimentSpec, params: LlmParams) -> dict[str, Any]:
    """The chat completion request: model, messages, sampling, then the template's extra_body."""
    template = params.prompt_template
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in template.messages],
        "stream": params.stream,
    }
    for name in SAMPLING:
        if (value := getattr(params, name)) is not None:
            body[name] = value
    if params.stream and params.include_usage:
        body["stream_options"] = {"include_usage": True}
    # Last, so an endpoint's own options (and deliberate overrides) reach it as written.
    body |= template.extra_body or {}
    return body


def _output(exchange: _chat.Exchange, api_key: str | None) -> dict[str, Any]:
    notes = list(exchange.notes)
    if not exchange.streamed:
        notes.append(NOT_STREAMED)
    input_tokens, output_tokens = _tokens(exchange)
    if input_tokens is None and output_tokens is None:
        notes.append(NO_USAGE)
    elif input_tokens is None or output_tokens is None:
        missing = "prompt_tokens" if input_tokens is None else "completion_tokens"
        notes.append(PARTIAL_USAGE.format(missing=missing))
    output: dict[str, Any] = {
        "answer": _scrub(exchange.answer, api_key),
        "finish_reason": exchange.finish_reason,
        "model": exchange.model,
        "endpoint": exchange.url,
        "stream": exchange.streamed,
        "usage": exchange.usage,
        "notes": notes,
    }
    if exchange.streamed:
        output["stream_events"] = exchange.events
        output["text_chunks"] = len(exchange.token_times)
    if exchange.reasoning:
        output["reasoning"] = _scrub(exchange.reasoning, api_key)
    return output


def _metrics(exchange: _chat.Exchange) -> dict[str, Any]:
    e2e = exchange.e2e_seconds
    metrics: dict[str, Any] = {"e2e_latency_seconds": e2e}
    ttft = exchange.token_times[0] if exchange.token_times else None
    if exchange.streamed:
        metrics["ttft_seconds"] = ttft
        times = exchange.token_times
        gaps = sorted(later - earlier for earlier, later in itertools.pairwise(times))
        metrics |= {
            "itl_mean_seconds": sum(gaps) / len(gaps) if gaps else None,
            "itl_p50_seconds": _percentile(gaps, 50),
            "itl_p90_seconds": _percentile(gaps, 90),
            "itl_p99_seconds": _percentile(gaps, 99),
            "itl_max_seconds": gaps[-1] if gaps else None,
        }
    input_tokens, output_tokens = _tokens(exchange)
    metrics["input_tokens"] = input_tokens
    metrics["output_tokens"] = output_tokens
    known = output_tokens is not None and e2e > 0
    metrics["tokens_per_second"] = output_tokens / e2e if known else None
    if exchange.streamed:
        decode = e2e - ttft if ttft is not None else 0.0
        fits = output_tokens is not None and output_tokens > 1 and decode > 0
        metrics["decode_tokens_per_second"] = (
            (output_tokens - 1) / decode if fits and output_tokens is not None else None
        )
    return metrics


def _tokens(exchange: _chat.Exchange) -> tuple[int | None, int | None]:
    usage = exchange.usage or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return _count(prompt), _count(completion)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between the nearest ranks (NumPy's default) of sorted values."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _scrub(text: str, secret: str | None) -> str:
    # An endpoint could echo what it was sent; the key must not reach a result or a status.
    return mask_text(text, [secret]) if secret else text
