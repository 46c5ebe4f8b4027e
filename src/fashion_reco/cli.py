"""``fashion-reco`` command line: a thin shell over :class:`FashionRecommender` and the data layer.

Every command takes ``--config FILE`` (TOML) and ``--debug``. Bad input exits with code 2 and one line naming the
file / row / column / key at fault; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import enum
import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from fashion_reco.config import RecommenderConfig, config_error
from fashion_reco.errors import ConfigError, FashionRecoError, FashionRecoWarning

if TYPE_CHECKING:
    import pandas as pd

    from fashion_reco.data.catalogue import Catalogue

app = typer.Typer(
    name="fashion-reco",
    help="Fashion recommendations from product photos, customer profiles and clickstream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


class DeployTarget(str, enum.Enum):
    """Where ``fashion-reco deploy`` puts the model."""

    TABLES = "tables"
    REGISTRY = "registry"


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
ModelDirOpt = Annotated[Path, typer.Option("--model", "-m", help="Directory written by `train` or `fit`.")]
CatalogueOpt = Annotated[
    str,
    typer.Option(
        "--catalogue", help="'auto', 'clothing', 'sample', a folder, a CSV manifest or s3://bucket/prefix."
    ),
]


class Relevance(str, enum.Enum):
    """Which test events count as hits."""

    any = "any"
    purchase = "purchase"


class Segment(str, enum.Enum):
    """Which test customers are scored."""

    warm = "warm"
    cold = "cold"
    all = "all"


def _load_config(config: Path | None) -> RecommenderConfig:
    return RecommenderConfig.from_toml(config) if config else RecommenderConfig()


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Library warnings (skipped photos, future events, coerced columns) as one ``warning:`` line on stderr."""
    typer.echo(f"warning: {message}", err=True)


def _friendly(func: F) -> F:
    """Turn library errors into one line on stderr and exit code 2 (1 for unexpected errors)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", FashionRecoWarning)
                warnings.showwarning = _one_line_warning
                return func(*args, **kwargs)
        except (FashionRecoError, ValidationError) as exc:
            if debug:
                raise
            shown = config_error(exc) if isinstance(exc, ValidationError) else exc
            typer.echo(f"error: {_one_line(str(shown))}", err=True)
            raise typer.Exit(2) from None
        except (KeyboardInterrupt, typer.Exit):
            raise
        except Exception as exc:
            if debug:
                raise
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (rerun with --debug for details)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _one_line(text: str) -> str:
    """A message on one line: inner line breaks become ``; `` (a CLI error is one line; --debug has the rest)."""
    return "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _open_catalogue(spec: str, cfg: RecommenderConfig) -> Catalogue:
    """``--catalogue`` resolved with the configured data root and S3 download settings."""
    from fashion_reco.data.s3 import S3Options
    from fashion_reco.data.sources import open_catalogue

    return open_catalogue(spec, data_root=cfg.data.root, s3=S3Options.from_data_config(cfg.data))


def _ids(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def _print_frame(frame: pd.DataFrame, out: Path | None) -> None:
    from fashion_reco.cli_output import write_frame

    write_frame(frame, out)


@app.command()
@_friendly
def fetch(
    uri: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    dest: Annotated[Path, typer.Argument(help="Local destination folder.")],
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint (MinIO, R2, moto, ...).")
    ] = None,
    unsigned: Annotated[
        bool | None, typer.Option("--unsigned/--signed", help="Public bucket without credentials.")
    ] = None,
    suffix: Annotated[list[str] | None, typer.Option(help="Only keys ending with this (repeatable).")] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Download a catalogue from S3 (resumable, concurrent, retried)."""
    from fashion_reco.data.s3 import S3Options, fetch_s3

    options = S3Options.from_data_config(
        _load_config(config).data, endpoint_url=endpoint_url, unsigned=unsigned
    )
    if suffix:
        options = options.replace(suffixes=tuple(suffix))
    report = fetch_s3(uri, dest, options, progress=True)
    typer.echo(
        f"downloaded {report.downloaded}, skipped {report.skipped}, failed {len(report.failed)} -> {dest}"
    )
    for key, reason in sorted(report.failed.items()):
        typer.echo(f"  failed {key}: {reason}", err=True)
    if report.failed:
        raise typer.Exit(3)


@app.command()
@_friendly
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the image model artefact.")],
    catalogue: CatalogueOpt = "auto",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Fine-tune ResNet18 on the catalogue's classes and save the image model."""
    from fashion_reco.facade import FashionRecommender

    cfg = _load_config(config)
    reco = FashionRecommender(cfg)
    model = reco.train(_open_catalogue(catalogue, cfg))
    model.save(out)
    typer.echo(f"image model saved to {out}")
    for split, metrics in model.metrics.items():
        typer.echo(f"[{split}] {metrics.summary()}")


@app.command()
@_friendly
def embed(
    model: ModelDirOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .parquet (item_id, embedding) or .npy.")],
    catalogue: CatalogueOpt = "auto",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Embed a catalogue's photos with a saved image model."""
    from fashion_reco.cli_output import write_embeddings
    from fashion_reco.facade import FashionRecommender
    from fashion_reco.model.image_model import ImageModel

    cfg = _load_config(config)
    items = _open_catalogue(catalogue, cfg)
    vectors = FashionRecommender(cfg, image_model=ImageModel.load(model)).embed(items)
    write_embeddings(items.item_ids, vectors, out)
    typer.echo(f"{len(vectors)} embeddings of dimension {vectors.shape[1]} written to {out}")


@app.command()
@_friendly
def fit(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the fitted recommender.")],
    catalogue: CatalogueOpt = "auto",
    interactions: Annotated[Path | None, typer.Option(help="Clickstream CSV.")] = None,
    customers: Annotated[Path | None, typer.Option(help="Customers CSV.")] = None,
    image_model: Annotated[Path | None, typer.Option(help="Reuse a trained image model directory.")] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="The time the model is fitted at (ISO 8601; default: the wall clock). Events after it are left "
            "out with a warning."
        ),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train (or reuse) the image model, embed the catalogue and fit the personalised ranking."""
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.facade import FashionRecommender
    from fashion_reco.model.image_model import ImageModel

    cfg = _load_config(config)
    reco = FashionRecommender(cfg, image_model=ImageModel.load(image_model) if image_model else None)
    reco.fit(
        _open_catalogue(catalogue, cfg),
        Interactions.from_csv(interactions, event_type_mapping=cfg.data.event_type_mapping)
        if interactions
        else None,
        Customers.from_csv(customers) if customers else None,
        now=now,
    )
    reco.save(out)
    summary = getattr(reco.recommender, "summary", None)
    if callable(summary):
        typer.echo(summary())
    typer.echo(f"{reco.fit_report_}; recommender saved to {out}")


@app.command()
@_friendly
def deploy(
    model: ModelDirOpt,
    config: ConfigOpt = None,
    target: Annotated[
        DeployTarget,
        typer.Option(
            "--target",
            help="`tables`: the embedding UDF, the tables and the batch procedure; `registry`: the image model to "
            "the Snowflake Model Registry (account mode and the `snowflake-ml` extra).",
        ),
    ] = DeployTarget.TABLES,
    debug: DebugOpt = False,
) -> None:
    """Deploy a fitted recommender to Snowflake (local testing session unless snowflake.mode = 'account')."""
    from fashion_reco.facade import FashionRecommender

    cfg = _load_config(config)
    reco = FashionRecommender.load(model)
    reco.config = cfg
    report = reco.deploy(
        target="registry" if target is DeployTarget.REGISTRY else "tables"
    )  # opens the configured session and closes it when done
    typer.echo(report.summary())


@app.command()
@_friendly
def similar(
    model: ModelDirOpt,
    item_ids: Annotated[list[str], typer.Argument(help="Item ids (space or comma separated).")],
    k: Annotated[int, typer.Option("-k", min=1)] = 10,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write CSV/parquet instead of printing.")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """'More like this' for the given items."""
    from fashion_reco.facade import FashionRecommender

    _print_frame(FashionRecommender.load(model).similar_items(_ids(item_ids), k=k), out)


@app.command()
@_friendly
def recommend(
    model: ModelDirOpt,
    customer_ids: Annotated[list[str], typer.Argument(help="Customer ids (space or comma separated).")],
    k: Annotated[int, typer.Option("-k", min=1)] = 12,
    include_purchased: Annotated[
        bool | None,
        typer.Option(
            "--include-purchased/--filter-purchased",
            help="Allow / never return items the customer already bought (default: the model decides — the ranker "
            "keeps repurchases, the blend removes them).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write CSV/parquet instead of printing.")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Personalised recommendations with a reason per row."""
    from fashion_reco.facade import FashionRecommender

    reco = FashionRecommender.load(model)
    filter_purchased = None if include_purchased is None else not include_purchased
    _print_frame(reco.recommend(_ids(customer_ids), k=k, filter_already_purchased=filter_purchased), out)


@app.command()
@_friendly
def evaluate(
    model: ModelDirOpt,
    test: Annotated[
        Path | None,
        typer.Option(
            "--test", help="Held-out (later) interactions CSV, scored with the recommender as fitted."
        ),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="A whole clickstream CSV to split by time: a fresh ranker and the baselines are fitted on "
            "the earlier events (with the bundle's catalogue, embeddings and customers) and scored on the last "
            "--holdout-days.",
        ),
    ] = None,
    holdout_days: Annotated[
        float | None,
        typer.Option(
            "--holdout-days",
            help="Length in days of each test window at the end of --events (default: blend.test_days for one "
            "fold; with --folds, 28, 7 or 1 days — the longest the log's span allows).",
        ),
    ] = None,
    folds: Annotated[
        int,
        typer.Option(
            "--folds",
            min=1,
            help="Rolling-origin folds over --events: consecutive test windows, fresh models fitted before each; "
            "prints each fold, the pooled table and bootstrap intervals of the ranker minus every baseline.",
        ),
    ] = 1,
    filter_purchased: Annotated[
        bool,
        typer.Option(
            "--filter-purchased/--keep-purchased",
            help="With --events: never recommend items a customer already bought (off: repurchase counts).",
        ),
    ] = False,
    k: Annotated[int | None, typer.Option("-k", min=1, help="List length (default: blend.k).")] = None,
    relevance: Annotated[Relevance, typer.Option(help="Which test events count as hits.")] = Relevance.any,
    segment: Annotated[
        Segment,
        typer.Option(help="Test customers scored: with training history (warm), without (cold), or all."),
    ] = Segment.warm,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write CSV/parquet instead of printing.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML configuration replacing the one saved in the bundle."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Offline metrics of the ranker vs every baseline: on a later window (--test), a time split (--events) or
    rolling folds (--events --folds N; with --out, the fold table and the intervals land beside it)."""
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.facade import FashionRecommender

    if holdout_days is not None and events is None:
        raise ConfigError("--holdout-days splits the --events log; pass --events", key="--holdout-days")
    if folds > 1 and events is None:
        raise ConfigError("--folds splits the --events log; pass --events", key="--folds")
    if (test is None) == (events is None):
        raise ConfigError(
            "pass either --test (a later window) or --events (a log to split by time)", key="--events"
        )
    reco = FashionRecommender.load(model)
    if config:
        reco.config = _load_config(config)
    mapping = reco.config.data.event_type_mapping
    if events is not None:
        result = reco.evaluate_time_split(
            Interactions.from_csv(events, event_type_mapping=mapping),
            holdout_days,
            k=k,
            folds=folds,
            relevance=relevance.value,
            segment=segment.value,
            filter_already_purchased=filter_purchased,
        )
        typer.echo(result.summary())
        _print_frame(result.table, out)
        if out is not None and folds > 1 and result.fold_table is not None and result.intervals is not None:
            _print_frame(result.fold_table, out.with_name(f"{out.stem}.folds{out.suffix}"))
            _print_frame(result.intervals, out.with_name(f"{out.stem}.intervals{out.suffix}"))
    elif test is not None:
        _print_frame(
            reco.evaluate(
                Interactions.from_csv(test, event_type_mapping=mapping),
                k=k,
                relevance=relevance.value,
                segment=segment.value,
            ),
            out,
        )


@app.command()
@_friendly
def report(
    model: ModelDirOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    test: Annotated[Path | None, typer.Option("--test", help="Held-out interactions to evaluate on.")] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="A whole log to evaluate on rolling time folds (see `evaluate --events --folds`).",
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=1, help="Rolling folds over --events.")] = 1,
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained HTML report (with --events: the fold table and the bootstrap intervals too)."""
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.facade import FashionRecommender

    if test is not None and events is not None:
        raise ConfigError(
            "pass either --test (a later window) or --events (a log to fold by time)", key="--events"
        )
    reco = FashionRecommender.load(model)
    mapping = reco.config.data.event_type_mapping
    evaluation: Any = None
    if test is not None:
        evaluation = reco.evaluate(Interactions.from_csv(test, event_type_mapping=mapping))
    elif events is not None:
        evaluation = reco.evaluate_time_split(
            Interactions.from_csv(events, event_type_mapping=mapping), folds=folds
        )
    typer.echo(f"report written to {reco.report(out, evaluation=evaluation)}")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model, data and report.")] = Path(
        "demo-out"
    ),
    catalogue: CatalogueOpt = "auto",
    quick: Annotated[bool, typer.Option(help="Tiny budget (smoke test): small images, one epoch.")] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Whole pipeline on the embedded defaults: photos → train → embed → clickstream → fit → deploy → evaluate → report."""
    from fashion_reco.demo import run_demo

    result = run_demo(out, catalogue=catalogue, config=_load_config(config) if config else None, quick=quick)
    typer.echo(result.summary())


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="fashion-reco")


if __name__ == "__main__":  # pragma: no cover
    main()
