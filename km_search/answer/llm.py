"""The optional OpenAI-compatible endpoint (``llm_url``): one small client.

It gets exactly the evidence the extractive answer would use (the numbered passages,
and the sentences chosen from them), so the two modes cite the same sources. The client
owns one ``httpx.Client``; ``close()`` (or leaving its ``with`` block) closes the socket,
so a server that went away is not left with a half-open connection that makes the next
request wait for the whole read timeout.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from km_search.settings import Config

log = logging.getLogger("km_search.answer")

SYSTEM = ("You answer questions about Thai public-sector knowledge management using ONLY "
          "the numbered passages given. Cite every sentence with its passage number like "
          "[1]. If the passages do not answer the question, reply exactly NO_ANSWER. "
          "Answer in {lang}.")


class LLMError(Exception):
    """The endpoint failed (network, HTTP status, malformed reply)."""


class LLMClient:
    """POST /chat/completions with a connect timeout short enough to fail fast on a port
    nobody listens on, and the configured read timeout for the model itself."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        headers = {"Authorization": f"Bearer {cfg.llm_api_key}"} if cfg.llm_api_key else {}
        timeout = httpx.Timeout(cfg.llm_timeout, connect=min(5.0, cfg.llm_timeout))
        self._http = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def complete(self, messages: list[dict[str, str]]) -> str:
        try:
            r = self._http.post(self.cfg.llm_url.rstrip("/") + "/chat/completions",
                                json={"model": self.cfg.llm_model, "messages": messages,
                                      "temperature": 0})
            r.raise_for_status()
            return str(r.json()["choices"][0]["message"]["content"]).strip()
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"{type(e).__name__}: {e}") from None


def history_messages(history: list[Any]) -> list[dict[str, str]]:
    """Earlier turns for the endpoint: ``{"role", "content"}`` dicts, or plain strings
    (earlier user questions, the /chat contract's ``history: list[str]``)."""
    out = []
    for turn in history[-6:]:
        if isinstance(turn, str):
            turn = {"role": "user", "content": turn}
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant") and turn.get("content"):
            out.append({"role": turn["role"], "content": str(turn["content"])[:2000]})
    return out


def build_messages(question: str, history: list[Any], sources: list[str], evidence: list[str],
                   lang: str) -> list[dict[str, str]]:
    """The prompt: numbered passages, then the sentences the extractive answer chose
    (same numbering), then the question."""
    msgs = [{"role": "system", "content": SYSTEM.format(lang="Thai" if lang == "th" else "English")}]
    msgs += history_messages(history)
    text = "Passages:\n" + "\n\n".join(f"[{i}] {s}" for i, s in enumerate(sources, 1))
    if evidence:
        text += "\n\nKey sentences:\n" + "\n".join(evidence)
    msgs.append({"role": "user", "content": f"{text}\n\nQuestion: {question}"})
    return msgs


def renumber_citations(text: str, n_sources: int) -> tuple[str, list[int]]:
    """Keep only citation numbers that name a given source, renumbered 1..k in order of
    first use; returns the text and the used source numbers (1-based, original)."""
    used: list[int] = []
    for m in re.findall(r"\[(\d+)\]", text):
        n = int(m)
        if 1 <= n <= n_sources and n not in used:
            used.append(n)
    new = {old: i for i, old in enumerate(used, 1)}
    seen: set[int] = set()

    def sub(m: re.Match) -> str:
        n = int(m[1])
        if n not in new or (n in seen and m.string[m.end():m.end() + 1] == "["):
            return ""
        seen.add(n)
        return f" [{new[n]}]"
    out = re.sub(r"\s*\[(\d+)\]", sub, text).strip()
    out = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", out)  # "[1] [1]" -> "[1]"
    return out, used
