#!/usr/bin/env python3
"""Drives the official `openai` Python SDK, unmodified, for the Rust integration tests.

    python openai_driver.py --base-url URL --api-key KEY SCENARIO [--model M] [--message TEXT]
                            [--max-tokens N] [--ca FILE]

Scenarios: `chat`, `stream`, `models`, `model`. Prints exactly one JSON line on stdout:
`{"ok": true, ...}` on success; `{"ok": false, "error_class", "status", "message", "body"}`
when the SDK raises `openai.APIError` (exit status 0: the test inspects the line). Anything
else unexpected also prints an `ok: false` line (with `"unexpected": true`) and exits 1.
Only the standard library and `openai`; no retries, a 30 s timeout. With `--ca FILE` (an
https base URL) the SDK trusts exactly the CA certificates in FILE, through its own HTTP client
class (`openai.DefaultHttpxClient`, the SDK's defaults) given an SSL context; without it, the
SDK's default trust.
"""

import argparse
import json
import ssl
import sys
import time

import openai


def dump(value):
    """A pydantic model (or None) as plain JSON data, without unset/None fields."""
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


def extra(obj, name):
    """A field outside the SDK's typed model (e.g. `reasoning`), or None."""
    value = getattr(obj, name, None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get(name)
    return value


def messages(args):
    system = [{"role": "system", "content": args.system}] if args.system else []
    return system + [{"role": "user", "content": args.message}]


def chat(client, args):
    kwargs = {}
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    completion = client.chat.completions.create(
        model=args.model,
        messages=messages(args),
        **kwargs,
    )
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice else None
    return {
        "ok": True,
        "content": message.content if message else None,
        "finish_reason": choice.finish_reason if choice else None,
        "usage": dump(completion.usage),
        "id": completion.id,
        "model": completion.model,
        "reasoning": extra(message, "reasoning") if message else None,
        "tool_calls": [dump(c) for c in message.tool_calls] if message and message.tool_calls else None,
    }


def stream(client, args, partial):
    kwargs = {}
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    started = time.monotonic()
    first_chunk_after = None
    ids = set()
    content = []
    reasoning = []
    finish_reason = None
    usage = None
    chunks = 0
    model = None
    response = client.chat.completions.create(
        model=args.model,
        messages=messages(args),
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    for chunk in response:
        if first_chunk_after is None:
            first_chunk_after = time.monotonic() - started
        chunks += 1
        partial["chunks"] = chunks
        ids.add(chunk.id)
        model = chunk.model or model
        if chunk.usage is not None:
            usage = dump(chunk.usage)
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    content.append(delta.content)
                    partial["content"] = "".join(content)
                piece = extra(delta, "reasoning")
                if piece:
                    reasoning.append(piece)
            if choice.finish_reason is not None:
                finish_reason = choice.finish_reason
    return {
        "ok": True,
        "content": "".join(content),
        "chunks": chunks,
        "finish_reason": finish_reason,
        "usage": usage,
        "first_chunk_after_s": first_chunk_after,
        "total_s": time.monotonic() - started,
        "id": next(iter(ids)) if len(ids) == 1 else sorted(i for i in ids if i is not None),
        "same_id": len(ids) == 1,
        "model": model,
        "reasoning": "".join(reasoning) if reasoning else None,
    }


def embeddings(client, args):
    kwargs = {}
    if args.encoding:
        kwargs["encoding_format"] = args.encoding
    if args.dimensions:
        kwargs["dimensions"] = args.dimensions
    inputs = args.input or ["Hello there"]
    result = client.embeddings.create(
        model=args.model, input=inputs[0] if args.single else inputs, **kwargs
    )
    vectors = []
    for item in result.data:
        embedding = item.embedding
        # With encoding_format "base64" the SDK hands back the string as it came.
        vectors.append(embedding if isinstance(embedding, list) else {"base64": embedding})
    return {
        "ok": True,
        "model": result.model,
        "indexes": [item.index for item in result.data],
        "vectors": vectors,
        "usage": dump(result.usage),
    }


def completion(client, args, partial):
    kwargs = {}
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    if not args.stream:
        result = client.completions.create(model=args.model, prompt=args.message, **kwargs)
        choice = result.choices[0]
        return {
            "ok": True,
            "id": result.id,
            "object": result.object,
            "text": choice.text,
            "finish_reason": choice.finish_reason,
            "usage": dump(result.usage),
            "model": result.model,
        }
    texts = []
    finish_reason = None
    usage = None
    chunks = 0
    for chunk in client.completions.create(
        model=args.model, prompt=args.message, stream=True,
        stream_options={"include_usage": True}, **kwargs,
    ):
        chunks += 1
        partial["chunks"] = chunks
        if chunk.usage is not None:
            usage = dump(chunk.usage)
        for choice in chunk.choices or []:
            texts.append(choice.text or "")
            if choice.finish_reason is not None:
                finish_reason = choice.finish_reason
    return {"ok": True, "text": "".join(texts), "chunks": chunks,
            "finish_reason": finish_reason, "usage": usage}


def models(client, _args):
    return {"ok": True, "ids": [m.id for m in client.models.list()]}


def model(client, args):
    found = client.models.retrieve(args.model)
    return {"ok": True, "id": found.id, "created": found.created, "owned_by": found.owned_by}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument(
        "scenario", choices=["chat", "stream", "models", "model", "embeddings", "completion"]
    )
    parser.add_argument("--model", default="qwen3:32b")
    parser.add_argument("--message", default="Hello there")
    parser.add_argument("--system", default=None, help="a system message before the user's")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--input", action="append", help="an embeddings input (repeatable)")
    parser.add_argument("--single", action="store_true", help="send the first input as a string")
    parser.add_argument("--encoding", default=None, help="encoding_format: float or base64")
    parser.add_argument("--dimensions", type=int, default=None)
    parser.add_argument("--stream", action="store_true", help="completion: stream")
    parser.add_argument("--ca", default=None, metavar="FILE",
                        help="trust only the CA certificate(s) in FILE (PEM) for https")
    args = parser.parse_args()

    http_client = None
    if args.ca:
        http_client = openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=args.ca))
    client = openai.OpenAI(
        base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30.0,
        http_client=http_client,
    )
    partial = {"content": "", "chunks": 0}
    try:
        if args.scenario == "chat":
            result = chat(client, args)
        elif args.scenario == "stream":
            result = stream(client, args, partial)
        elif args.scenario == "embeddings":
            result = embeddings(client, args)
        elif args.scenario == "completion":
            result = completion(client, args, partial)
        elif args.scenario == "models":
            result = models(client, args)
        else:
            result = model(client, args)
    except openai.APIError as e:
        result = {
            "ok": False,
            "error_class": type(e).__name__,
            "status": getattr(e, "status_code", None),
            "message": str(e),
            "body": getattr(e, "body", None),
        }
        if args.scenario == "stream":
            result["partial"] = partial
        print(json.dumps(result, default=str), flush=True)
        return 0
    except Exception as e:  # noqa: BLE001 - the test needs a JSON line whatever happened
        print(
            json.dumps(
                {
                    "ok": False,
                    "unexpected": True,
                    "error_class": type(e).__name__,
                    "status": None,
                    "message": str(e),
                    "body": None,
                },
                default=str,
            ),
            flush=True,
        )
        return 1
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
