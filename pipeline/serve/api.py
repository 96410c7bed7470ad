"""The title server: an HTTP API and a web page over one loaded run, requests batched together.

    make serve CONFIG=configs/default.yaml     (python -m pipeline.serve --config ... [serve.port=8001 ...])

    POST /v1/titles      {category, keywords, n, seed?, guidance?, temperature?} -> titles with keyword hits, log-prob
    GET  /v1/categories  the trained categories with their numbers of training titles
    GET  /healthz        liveness, queue depth and batches run
    GET  /docs           the OpenAPI page;  GET / the web page (pipeline/serve/web/, no external resources)

The model and its sampling graph are loaded once per process (pipeline.serve.generator.TitleGenerator);
concurrent requests are batched by pipeline.serve.batcher.Batcher. Every refusal is JSON with a one-line
`error` naming the field: 422 for a bad value, 413 for a body over serve.max_body_bytes, 503
at once when serve.queue_size requests are waiting already.
"""
import asyncio
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Optional

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.config import ServeConfig
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import normalise_category, normalise_keyword
from pipeline.serve.batcher import Batcher, QueueFull
from pipeline.serve.generator import MAX_SEED, MIN_TEMPERATURE, TitleGenerator, long_lived_tensorflow

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
    """The POST /v1/titles body, with the configured limits (they show on the OpenAPI page too)."""
    keyword = Annotated[str, Field(min_length=1, max_length=s.max_keyword_chars)]
    return create_model(
        "TitleRequest", __config__=ConfigDict(extra="forbid"),
        category=(str, Field(min_length=1, max_length=s.max_category_chars, examples=["cooking"])),
        keywords=(list[keyword], Field(default=[], max_length=s.max_keywords, examples=[["garlic bread"]])),
        n=(int, Field(default=4, ge=1, le=s.max_n)),
        seed=(Optional[int], Field(default=None, ge=0, le=MAX_SEED, description="same seed, same titles")),
        guidance=(bool, Field(default=True, description="keyword guidance (when the run has it)")),
        temperature=(Optional[float], Field(default=None, ge=MIN_TEMPERATURE, le=s.max_temperature,
                                            description="default: the run's generate.temperature")),
    )


def refuse(status: int, field: str | None, message: str) -> JSONResponse:
    """A refusal: `error` is one line naming the field; `detail` keeps FastAPI's list shape for 422."""
    error = f"{field}: {message}" if field else message
    detail = [{"loc": ["body", field], "msg": message, "type": "value_error"}] if field else message
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


class BodyLimit:
    """ASGI middleware: 413 for a body declared over `limit` bytes, 411 for a body of unknown length."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is None or not length.isdigit():
                response = refuse(411, None, "a request body needs a Content-Length header")
                return await response(scope, receive, send)
            if int(length) > self.limit:
                response = refuse(413, None, f"request body of {int(length)} bytes is over the limit "
                                             f"of {self.limit} (serve.max_body_bytes)")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(gen: TitleGenerator, s: ServeConfig) -> FastAPI:
    """The app over `gen` (which it closes on shutdown) with the limits and batching of `s`."""
    batcher = Batcher(gen.run, lambda req: req.prompt.count, s.batch_window_ms / 1000, s.max_batch, s.queue_size)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        gen.close()

    app = FastAPI(title="keyword-titles", summary="Reddit titles for a subreddit and keywords, on demand",
                  lifespan=lifespan)
    app.state.batcher, app.state.generator = batcher, gen
    gen.categories  # read the training text now, not inside the first request's event-loop turn
    app.add_middleware(BodyLimit, limit=s.max_body_bytes)
    Request = request_model(s)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = "".join(f"[{p}]" if p.isdigit() else ("." if i else "") + p for i, p in enumerate(loc))
        if first.get("type") == "json_invalid" or not field:  # its loc is a character offset
            field = "body"
        return JSONResponse({"error": f"{field}: {first.get('msg', 'invalid value')}",
                             "detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.post("/v1/titles", response_model=TitlesOut, responses={422: {}, 413: {}, 503: {}})
    async def titles(body: Request):  # type: ignore[valid-type]
        if not normalise_category(body.category).strip("-"):
            return refuse(422, "category", f"{body.category!r} has no letters or digits")
        for i, keyword in enumerate(body.keywords):
            if not normalise_keyword(keyword):
                return refuse(422, f"keywords[{i}]", f"{keyword!r} has no letters or digits")
        try:
            req = gen.request(body.category, body.keywords, body.n, body.seed, body.guidance, body.temperature)
            future = batcher.submit(req)
        except InputError as exc:
            return refuse(422, None, str(exc))
        except QueueFull as exc:
            return refuse(503, None, f"the server is busy ({exc}; serve.queue_size); try again shortly")
        try:
            records = await asyncio.wrap_future(future)
        except Exception as exc:  # the model failed on this batch; the worker goes on with the next
            return refuse(500, None, f"generation failed: {type(exc).__name__}: {exc}")
        return TitlesOut(category=req.prompt.category, keywords=list(req.prompt.keywords), seed=req.seed,
                         guided=req.guided and gen.loop.guided, temperature=req.temperature or gen.temperature,
                         warning=gen.category_warning(req.prompt.category),
                         titles=[TitleOut(**{k: v for k, v in r.to_dict().items() if k != "keywords"})
                                 for r in records])

    @app.get("/v1/categories", response_model=CategoriesOut)
    def categories():
        return CategoriesOut(categories=[CategoryOut(name=c, titles=n) for c, n in gen.categories.items()])

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "queue": batcher.waiting, "batches": batcher.batches, "requests": batcher.requests,
                "limits": {"max_n": s.max_n, "max_keywords": s.max_keywords}}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


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
        gen = TitleGenerator.from_config(args.config, args.overrides)
    except (ConfigError, InputError) as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
    s = cfg.serve
    print(f"serve: run '{cfg.name}' on http://{s.host}:{s.port}/ (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(gen, s), host=s.host, port=s.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
