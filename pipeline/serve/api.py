"""The title server: an HTTP API and a web page over one loaded run, requests batched together.

    make serve CONFIG=configs/default.yaml     (python -m pipeline.serve --config ... [serve.port=8001 ...])

    POST /v1/titles      {category, keywords, n, seed?, guidance?, temperature?} -> titles with keyword hits, log-prob
    GET  /v1/categories  the trained categories with their numbers of training titles
    GET  /healthz        liveness, queue depth and batches run
    GET  /openapi.json   the API's schema;  GET / the web page (pipeline/serve/web/, no external resources)

The model and its sampling graph are loaded once per process (pipeline.serve.generator.TitleGenerator);
concurrent requests are batched by pipeline.serve.batcher.Batcher. Requests are checked by
pipeline.serve.checks, as the Python API and the one-shot command check them. Every answer that is
not 2xx is JSON with a one-line `error` and never holds a trace or a file path: 422 for a bad value,
400 for a body that is not JSON, 413 over serve.max_body_bytes, 415 for a body that is not
application/json, 401 without serve.token (when set), 400 for a Host not allowed, 503 (with
Retry-After) when serve.queue_size requests are waiting already. The interactive /docs page is off:
it loads its scripts from a CDN, and nothing here may need the network.
"""
import asyncio
import errno
import hmac
import ipaddress
import socket
import sys
import traceback
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from pipeline.config import ServeConfig
from pipeline.core.errors import ConfigError, InputError
from pipeline.serve.batcher import Batcher, QueueFull
from pipeline.serve.checks import MAX_SEED, MIN_TEMPERATURE
from pipeline.serve.generator import TitleGenerator, long_lived_tensorflow

WEB = Path(__file__).resolve().parent / "web"


class TitleOut(BaseModel):
    title: str
    keywords_present: list[str] = Field(description="requested keywords the title contains (as written, any case)")
    keywords_missing: list[str]
    logprob: float = Field(description="the model's mean log-probability per generated token (higher: more fluent)")
    finished: bool = Field(description="false when the title was cut at the length limit")


class TitlesOut(BaseModel):
    category: Optional[str] = Field(description="the category as normalised for the model")
    keywords: list[str] = Field(description="the keywords as normalised for the model")
    seed: Optional[int] = Field(description="the request's seed (none: drawn with other requests, not repeatable)")
    guided: bool
    temperature: float
    warning: Optional[str] = Field(None, description="set when the category is not in the training text")
    titles: list[TitleOut]


class CategoryOut(BaseModel):
    name: str
    titles: int = Field(description="distinct training titles")


class CategoriesOut(BaseModel):
    categories: list[CategoryOut]


def request_model(s: ServeConfig) -> type[BaseModel]:
    """The POST /v1/titles body. Values are checked by pipeline.serve.checks (one rule for every front
    door), so the fields take anything here; their types and limits are stated for the schema."""
    def spec(schema: dict, **kw) -> Any:
        return (Any, Field(json_schema_extra=schema, **kw))
    return create_model(
        "TitleRequest", __config__=ConfigDict(extra="forbid"),
        category=spec({"type": "string", "maxLength": s.max_category_chars}, examples=["cooking"]),
        keywords=spec({"type": "array", "maxItems": s.max_keywords,
                       "items": {"type": "string", "maxLength": s.max_keyword_chars}}, default=[]),
        n=spec({"type": "integer", "minimum": 1, "maximum": s.max_n}, default=4),
        seed=spec({"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED}, default=None,
                  description="same seed, same titles"),
        guidance=spec({"type": "boolean"}, default=True, description="keyword guidance (when the run has it)"),
        temperature=spec({"type": ["number", "null"], "minimum": MIN_TEMPERATURE, "maximum": s.max_temperature},
                         default=None, description="default: the run's generate.temperature"),
    )


def refuse(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """A refusal: `error` is one line, naming the field first when there is one ('n: ...'); `detail`
    keeps FastAPI's list shape for 422."""
    field, sep, msg = message.partition(": ")
    detail = [{"loc": ["body", field], "msg": msg, "type": "value_error"}] if sep and status == 422 else message
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware run before the app: the Host header, the token, the body's size and type.

    allowed_hosts: Host header values (port ignored) answered; '*' any. A foreign Host is how DNS
    rebinding reaches a loopback server from a web page. token: when set, POST/GET under /v1/ need
    `Authorization: Bearer <token>` (compared in constant time).
    """

    def __init__(self, app, s: ServeConfig) -> None:
        self.app, self.s = app, s
        self.hosts = set(s.allowed_hosts) or {"localhost", "127.0.0.1", "[::1]", s.host}

    def _check(self, scope) -> JSONResponse | None:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if "*" not in self.hosts and name not in self.hosts:
            return refuse(400, "Host header not allowed (serve.allowed_hosts lists the names this server answers)")
        if self.s.token and scope["path"].startswith("/v1/"):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.s.token.encode("utf-8")):
                return refuse(401, "this server needs `Authorization: Bearer <serve.token>`",
                              headers={"WWW-Authenticate": "Bearer"})
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get(b"content-length")
            if length is None or not length.isdigit():
                return refuse(411, "a request body needs a Content-Length header")
            if int(length) > self.s.max_body_bytes:
                return refuse(413, f"request body of {int(length)} bytes is over the limit of "
                                   f"{self.s.max_body_bytes} (serve.max_body_bytes)")
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                return refuse(415, "the request body must be JSON (Content-Type: application/json)")
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and (response := self._check(scope)) is not None:
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    """One line for the first error, without the value sent (it may be anything, even unencodable)."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return "body: not valid JSON"
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = "".join(f"[{p}]" if p.isdigit() else ("." if i else "") + p for i, p in enumerate(loc)) or "body"
    messages = {"missing": "is required", "extra_forbidden": "is not a field of this request",
                "model_attributes_type": "must be a JSON object", "dict_type": "must be a JSON object"}
    return f"{field}: {messages.get(first.get('type'), 'invalid value')}"


def create_app(gen: TitleGenerator, s: ServeConfig) -> FastAPI:
    """The app over `gen` (which it closes on shutdown) with the limits, guard and batching of `s`."""
    gen.limits = s  # a server's requests are held to its own serve: section
    batcher = Batcher(gen.run, lambda req: req.prompt.count, s.batch_window_ms / 1000, s.max_batch, s.queue_size)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        gen.close()

    app = FastAPI(title="keyword-titles", summary="Reddit titles for a subreddit and keywords, on demand",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher, app.state.generator = batcher, gen
    gen.categories  # read the training text now, not inside the first request's event-loop turn
    app.add_middleware(Guard, s=s)
    Request = request_model(s)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc: RequestValidationError) -> JSONResponse:
        return refuse(422, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException) -> JSONResponse:
        words = {400: "body: not valid JSON in UTF-8", 404: "no such page", 405: "method not allowed here"}
        return refuse(exc.status_code, words.get(exc.status_code, "request refused"), headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(request, exc: Exception) -> JSONResponse:
        traceback.print_exception(exc, file=sys.stderr)  # the server's log has the details; the client never
        return refuse(500, "internal error (the server log has the details)")

    @app.post("/v1/titles", response_model=TitlesOut, responses={422: {}, 413: {}, 415: {}, 503: {}})
    async def titles(body: Request):  # type: ignore[valid-type]
        try:
            req = gen.request(body.category, body.keywords, body.n, body.seed, body.guidance, body.temperature)
            future = batcher.submit(req)
        except InputError as exc:
            return refuse(422, str(exc))
        except QueueFull as exc:
            return refuse(503, f"the server is busy ({exc}; serve.queue_size); try again shortly",
                          headers={"Retry-After": "1"})
        try:
            records = await asyncio.wrap_future(future)
        except Exception as exc:  # the model failed on this batch; the worker goes on with the next
            traceback.print_exception(exc, file=sys.stderr)
            return refuse(500, "generation failed (the server log has the details)")
        return TitlesOut(category=req.prompt.category, keywords=list(req.prompt.keywords), seed=req.seed,
                         guided=req.guided and gen.loop.guided, temperature=req.temperature or gen.temperature,
                         warning=gen.category_warning(req.prompt.category),
                         titles=[TitleOut(**{k: v for k, v in r.to_dict().items() if k != "keywords"})
                                 for r in records])

    # HEAD as well as GET (a monitor's probe); the HEAD route stays out of the schema, where it
    # would repeat the GET operation.
    @app.head("/v1/categories", include_in_schema=False)
    @app.get("/v1/categories", response_model=CategoriesOut)
    def categories():
        return CategoriesOut(categories=[CategoryOut(name=c, titles=n) for c, n in gen.categories.items()])

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "queue": batcher.waiting, "batches": batcher.batches, "requests": batcher.requests,
                "limits": {"max_n": s.max_n, "max_keywords": s.max_keywords}, "token_required": bool(s.token)}

    @app.head("/", include_in_schema=False)
    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def port_in_use(host: str, port: int) -> bool:
    """Whether `host`:`port` is taken already (checked before the model loads, and before saying where we serve)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def main(argv: list[str]) -> int:
    """`make serve`: load the run named by --config, serve it with uvicorn; 2 after a one-line error."""
    import argparse

    import uvicorn

    from pipeline.config import load_config

    long_lived_tensorflow()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        s = cfg.serve
        try:
            busy = port_in_use(s.host, s.port)
        except OSError as exc:
            raise ConfigError(f"serve.host: cannot listen on {s.host}:{s.port} ({exc.strerror})") from None
        if busy:
            raise ConfigError(f"serve.port: port {s.port} on {s.host} is in use (stop what runs there, or choose "
                              f"another with serve.port=...)")
        gen = TitleGenerator.from_config(args.config, args.overrides, announce="serve")
    except (ConfigError, InputError) as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
    if not _loopback(s.host):
        print(f"serve: warning: serve.host {s.host} answers other machines; set serve.token and "
              f"serve.allowed_hosts, or keep 127.0.0.1 behind a reverse proxy (docs/serving.md)",
              file=sys.stderr, flush=True)
    print(f"serve: run '{cfg.name}' on http://{s.host}:{s.port}/", file=sys.stderr, flush=True)
    uvicorn.run(create_app(gen, s), host=s.host, port=s.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
