"""``loyalty``: the command line. Every subcommand reads its settings from the environment
(see :mod:`loyalty.settings`); user errors print ``error [code]: message`` and exit 2."""

from __future__ import annotations

import argparse
import getpass
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from loyalty.adapters.migrations import apply_migrations
from loyalty.bootstrap import Services, build_services
from loyalty.commands.ingest import IngestSummary
from loyalty.domain.consent import Purpose
from loyalty.domain.errors import LoyaltyError, UnknownProjection, WeakPassword
from loyalty.domain.operator import Operator, Role
from loyalty.settings import Settings

if TYPE_CHECKING:
    from loyalty.projections.runner import ReadModel

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handler: Handler = args.handler
        return handler(args, settings)
    except LoyaltyError as error:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    cmd = commands.add_parser("migrate", help="apply the SQL migrations that are missing")
    cmd.set_defaults(handler=migrate)

    cmd = commands.add_parser("apply", help="make the store match a program file (TOML/JSON)")
    cmd.add_argument("file", nargs="?", type=Path)
    cmd.add_argument("--demo", action="store_true", help="apply the bundled demo program")
    cmd.set_defaults(handler=apply)

    cmd = commands.add_parser("serve", help="serve the API")
    cmd.add_argument("--host")
    cmd.add_argument("--port", type=int)
    cmd.set_defaults(handler=serve)

    cmd = commands.add_parser("ingest", help="record NDJSON movements in bulk")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--rejects", type=Path, help="where rejected lines go (FILE.rejects.ndjson)")
    cmd.add_argument("--batch-size", type=int, default=500)
    cmd.set_defaults(handler=ingest)

    cmd = commands.add_parser("terminal-key", help="issue a new API key for a terminal")
    cmd.add_argument("terminal")
    cmd.set_defaults(handler=issue_terminal_key)

    cmd = commands.add_parser("block-card", help="block a card")
    cmd.add_argument("card")
    cmd.add_argument("--reason", required=True)
    cmd.set_defaults(handler=block_card)

    cmd = commands.add_parser("adjust", help="correct a card's balance (operator)")
    cmd.add_argument("card")
    cmd.add_argument("--campaign", required=True)
    cmd.add_argument("--points", type=int, default=0)
    cmd.add_argument("--credits", type=Decimal, default=Decimal(0))
    cmd.add_argument("--reason", required=True)
    cmd.add_argument("--operator", required=True)
    cmd.add_argument("--movement-id", help="idempotency key (default: a new UUID)")
    cmd.set_defaults(handler=adjust)

    add_projection_commands(
        commands.add_parser("projections", help="run, watch and rebuild the read models")
    )
    add_operator_commands(commands.add_parser("operator", help="manage operators"))
    add_audit_commands(commands.add_parser("audit", help="check the event log (auditors)"))
    add_privacy_commands(
        commands.add_parser("privacy", help="customers' rights: access, erasure; key rotation")
    )
    return parser


def add_privacy_commands(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    cmd = actions.add_parser("export", help="everything held on a card's holder, as JSON")
    cmd.add_argument("card")
    cmd.set_defaults(handler=privacy_export)
    cmd = actions.add_parser("erase", help="erase a card's holder: their data key is destroyed")
    cmd.add_argument("card")
    cmd.add_argument("--reason", required=True)
    cmd.set_defaults(handler=privacy_erase)
    cmd = actions.add_parser(
        "sample", help="a consent sample check: reproducible sample, trails, anomalies"
    )
    cmd.add_argument("--size", type=int, required=True)
    cmd.add_argument("--seed", type=int, required=True)
    cmd.add_argument("--purpose", choices=[p.value for p in Purpose])
    cmd.add_argument("--from", dest="start", type=moment, help="consents and contacts from")
    cmd.add_argument("--to", dest="end", type=moment, help="consents and contacts before")
    cmd.add_argument("--html", type=Path, help="also write the report, for people, here")
    cmd.set_defaults(handler=privacy_sample)
    cmd = actions.add_parser(
        "retention", help="apply the retention periods now (the server does it daily)"
    )
    cmd.set_defaults(handler=privacy_retention)
    cmd = actions.add_parser("policy", help="publish a new version of the privacy policy")
    cmd.add_argument("locale")
    cmd.add_argument("file", type=Path, help="the policy text")
    cmd.set_defaults(handler=privacy_policy)
    cmd = actions.add_parser(
        "rotate-master-key",
        help="re-wrap every data key under LOYALTY_MASTER_KEY (the old one as"
        " LOYALTY_PREVIOUS_MASTER_KEY)",
    )
    cmd.set_defaults(handler=privacy_rotate)


def add_projection_commands(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    cmd = actions.add_parser("run", help="follow the log and keep every read model up to date")
    cmd.add_argument(
        "--only",
        type=lambda names: names.split(","),
        default=None,
        metavar="NAME[,NAME]",
        help="follow only these, without the scheduled RFM and cluster runs (default: every"
        " read model, the scheduled runs, and the publication to NATS in a process of its own)",
    )
    cmd.set_defaults(handler=projections_run)
    cmd = actions.add_parser("status", help="each read model's position, lag, rate and shape")
    cmd.add_argument("--json", action="store_true", help="print JSON lines")
    cmd.set_defaults(handler=projections_status)
    cmd = actions.add_parser(
        "rebuild", help="build a read model again from zero and swap it in when caught up"
    )
    cmd.add_argument("name")
    cmd.set_defaults(handler=projections_rebuild)


def add_audit_commands(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    cmd = actions.add_parser(
        "verify", help="walk the hash chain and the signed checkpoints; exit 1 if broken"
    )
    cmd.set_defaults(handler=audit_verify)
    cmd = actions.add_parser("checkpoint", help="sign the head of the chain now")
    cmd.set_defaults(handler=audit_checkpoint)
    cmd = actions.add_parser(
        "replay",
        help="derive every movement again, compare it with the stored one; exit 1 if any differs",
    )
    cmd.add_argument("--from", dest="start", type=moment, help="movements at or after (RFC 3339)")
    cmd.add_argument("--to", dest="end", type=moment, help="movements before (RFC 3339)")
    cmd.set_defaults(handler=audit_replay)


def moment(text: str) -> datetime:
    """An RFC 3339 time with its offset (argparse type)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (Z or +01:00)")
    return value


def add_operator_commands(parser: argparse.ArgumentParser) -> None:
    roles = [role.value for role in Role]
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    password_help = "read the password from the first line of stdin (default: prompt twice)"

    cmd = actions.add_parser("add", help="create an operator")
    cmd.add_argument("username")
    cmd.add_argument("--role", required=True, choices=roles)
    cmd.add_argument("--scope", nargs="*", default=[], metavar="NODE", help="node codes")
    cmd.add_argument("--password-stdin", action="store_true", help=password_help)
    cmd.set_defaults(handler=operator_add)

    cmd = actions.add_parser("passwd", help="set an operator's password")
    cmd.add_argument("username")
    cmd.add_argument("--password-stdin", action="store_true", help=password_help)
    cmd.set_defaults(handler=operator_passwd)

    cmd = actions.add_parser("role", help="change an operator's role and scope")
    cmd.add_argument("username")
    cmd.add_argument("--role", required=True, choices=roles)
    cmd.add_argument("--scope", nargs="*", default=[], metavar="NODE", help="node codes")
    cmd.set_defaults(handler=operator_role)

    cmd = actions.add_parser("deactivate", help="stop an operator from signing in")
    cmd.add_argument("username")
    cmd.add_argument("--reason", required=True)
    cmd.set_defaults(handler=operator_deactivate)

    cmd = actions.add_parser("reactivate", help="let a deactivated operator sign in again")
    cmd.add_argument("username")
    cmd.set_defaults(handler=operator_reactivate)


def with_services(settings: Settings, work: Callable[[Services], int]) -> int:
    services = build_services(settings)
    try:
        return work(services)
    finally:
        services.close()


def migrate(_: argparse.Namespace, settings: Settings) -> int:
    applied = apply_migrations(settings)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none missing'}")
    return 0


def read_model(name: str, settings: Settings) -> type[ReadModel]:
    from loyalty.projections.models import followers

    found = followers(settings)
    if name not in found:
        known = ", ".join(sorted(found))
        raise UnknownProjection(
            f"no read model is called {name} (there are: {known})", projection=name
        )
    return found[name]


def projections_run(args: argparse.Namespace, settings: Settings) -> int:
    """Runs until interrupted (SIGINT or SIGTERM), then applies what it holds and stops;
    recomputes RFM with the saved parameters every ``LOYALTY_RFM_INTERVAL_H`` and the
    dynamic clusters' members every ``LOYALTY_CLUSTER_INTERVAL_H``. Followers whose class
    asks for it (the publication) run in child processes, unless nothing else is followed.
    ``--only`` splits the followers across processes or machines: the scheduled runs
    belong to the run without it."""
    from loyalty.commands.ledger import Ledger
    from loyalty.commands.memberships import evaluate_dynamic_clusters
    from loyalty.commands.periodic import Periodic
    from loyalty.projections.models import followers
    from loyalty.projections.processes import apart
    from loyalty.projections.rfm_runs import scheduled_run
    from loyalty.projections.runner import read_datastore, running

    models = list(
        dict.fromkeys(read_model(name, settings) for name in args.only or followers(settings))
    )
    shared = [m for m in models if not m.own_process]
    elsewhere = [m for m in models if m.own_process] if shared else []
    here = [m for m in models if m not in elsewhere]
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    datastore = read_datastore(settings, pool_size=2 * len(here))
    ledger = Ledger(settings)
    jobs = [
        Periodic(
            "rfm",
            settings.rfm_interval_h * 3600,
            lambda: scheduled_run(ledger, settings, datetime.now(UTC).date()),
        ),
        Periodic(
            "clusters",
            settings.cluster_interval_h * 3600,
            lambda: evaluate_dynamic_clusters(ledger, datetime.now(UTC).date(), by="schedule"),
        ),
    ]
    try:
        with apart(settings, elsewhere) as check_apart, running(settings, here, datastore) as check:
            names = ", ".join(m.name for m in here)
            print(f"following the log for {names}", file=sys.stderr)
            for job in jobs if args.only is None else []:
                job.start()
            while not stopping.wait(0.5):
                check()
                check_apart()
    finally:
        for job in jobs:
            job.stop()
        ledger.close()
        datastore.close()
    return 0


def projections_status(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.projections.models import followers
    from loyalty.projections.runner import read_datastore
    from loyalty.projections.status import status_of

    datastore = read_datastore(settings)
    try:
        found = [status_of(settings, datastore, model) for model in followers(settings).values()]
    finally:
        datastore.close()
    if args.json:
        for status in found:
            print(msgspec.json.encode(status).decode())
        return 0
    print(
        f"{'read model':<12} {'gen':>4} {'shape':>5} {'position':>10} {'lag (events)':>13}"
        f" {'lag (s)':>8} {'rate/s':>9}"
    )
    for s in found:
        print(
            f"{s.name:<12} {s.generation:>4} {s.shape:>5} {s.position:>10} {s.lag_events:>13}"
            f" {s.lag_seconds:>8.1f} {s.rate:>9.0f}"
            + (f"  (this release reads shape {s.code_shape})" if s.shape != s.code_shape else "")
            + (f"  (rebuilding generation {s.building})" if s.building else "")
        )
    return 0


def projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.projections.runner import read_datastore, rebuild

    model = read_model(args.name, settings)
    started = time.monotonic()
    datastore = read_datastore(settings)

    def show(position: int, head: int) -> None:
        print(f"\r{model.name}: {position:,} of {head:,}", end="", file=sys.stderr, flush=True)

    try:
        generation = rebuild(settings, model, datastore, show)
    finally:
        datastore.close()
    print(
        f"\n{model.name}: generation {generation} serves reads"
        f" (rebuilt in {time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    return 0


def demo_program() -> Path:
    return Path(str(resources.files("loyalty") / "demo" / "program.toml"))


def apply(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.apply import read_program

    if bool(args.file) == bool(args.demo):
        print("error [usage]: give a FILE or --demo", file=sys.stderr)
        return 2
    program = read_program(demo_program() if args.demo else args.file)

    def work(services: Services) -> int:
        report = services.applier.apply(program)
        print(f"applied: {report.events} event(s) on {report.streams} stream(s)")
        return 0

    return with_services(settings, work)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.api.server import serve as run_servers

    run_servers(
        args.host or settings.http_host,
        args.port or settings.http_port,
        settings.http_workers,
    )
    return 0


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.ingest import ingest as run_ingest

    rejects_path = args.rejects or args.file.with_suffix(".rejects.ndjson")
    size = args.file.stat().st_size
    started = time.perf_counter()

    def work(services: Services) -> int:
        with args.file.open("rb") as source, rejects_path.open("wb") as rejects:

            def show(summary: IngestSummary) -> None:
                print(
                    f"\r{progress_line(summary, source.tell(), size, started)}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

            summary = run_ingest(services.desk, source, rejects, args.batch_size, show)
        print(file=sys.stderr)
        print(msgspec.json.encode(summary).decode())
        if summary.rejected:
            print(f"rejected lines and reasons: {rejects_path}", file=sys.stderr)
        return 0

    return with_services(settings, work)


PROGRESS_WIDTH = 30


def progress_line(summary: IngestSummary, done_bytes: int, total_bytes: int, started: float) -> str:
    """``[#######.......]  45%  12,345 lines  ...  2,900/s``: the ingest's progress bar."""
    share = min(done_bytes / total_bytes, 1.0) if total_bytes else 1.0
    filled = int(share * PROGRESS_WIDTH)
    rate = summary.lines / max(time.perf_counter() - started, 1e-9)
    return (
        f"[{'#' * filled}{'.' * (PROGRESS_WIDTH - filled)}] {share:4.0%}  "
        f"{summary.lines:,} lines  {summary.accepted:,} accepted  "
        f"{summary.replayed:,} replayed  {summary.rejected:,} rejected  {rate:,.0f}/s"
    )


def issue_terminal_key(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.admin import issue_terminal_key as issue

    key = f"lt_{secrets.token_urlsafe(32)}"

    def work(services: Services) -> int:
        issue(services.ledger, args.terminal, key)
        print(key)
        print("store this key now: only its hash is kept", file=sys.stderr)
        return 0

    return with_services(settings, work)


def block_card(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.admin import block_card as block

    def work(services: Services) -> int:
        block(services.ledger, args.card, args.reason)
        print(f"card {args.card} blocked")
        return 0

    return with_services(settings, work)


def adjust(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.movements import Recorded
    from loyalty.commands.schemas import Adjust

    command = Adjust(
        movement_id=args.movement_id or str(uuid.uuid4()),
        card=args.card,
        campaign=args.campaign,
        points=args.points,
        credits=args.credits,
        reason=args.reason,
        operator=args.operator,
        occurred_at=datetime.now(UTC),
    )

    def work(services: Services) -> int:
        outcome = services.desk.adjust(command)
        if isinstance(outcome, LoyaltyError):
            raise outcome
        assert isinstance(outcome, Recorded)
        print(outcome.body.decode())
        return 0

    return with_services(settings, work)


def describe(operator: Operator) -> str:
    return f"{operator.role}, scope {' '.join(operator.scope)}"


def cli_actor() -> str:
    """Who made a change from the command line, for the security trail."""
    return f"cli:{getpass.getuser()}"


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise WeakPassword("the two passwords differ", field="password")
    return password


def operator_add(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.operators import add_operator

    password = read_password(args)

    def work(services: Services) -> int:
        operator = add_operator(
            services.ledger,
            args.username,
            password,
            Role(args.role),
            tuple(args.scope),
            cli_actor(),
        )
        print(
            f"operator {operator.username} added: {operator.role}, scope {' '.join(operator.scope)}"
        )
        return 0

    return with_services(settings, work)


def operator_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.operators import change_password

    password = read_password(args)

    def work(services: Services) -> int:
        change_password(services.ledger, args.username, password, cli_actor())
        print(f"password of {args.username} changed")
        return 0

    return with_services(settings, work)


def operator_role(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.operators import change_role

    def work(services: Services) -> int:
        operator = change_role(
            services.ledger, args.username, Role(args.role), tuple(args.scope), cli_actor()
        )
        print(f"operator {operator.username}: {describe(operator)}")
        return 0

    return with_services(settings, work)


def operator_deactivate(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.operators import deactivate_operator

    def work(services: Services) -> int:
        deactivate_operator(services.ledger, args.username, args.reason, cli_actor())
        print(f"operator {args.username} deactivated")
        return 0

    return with_services(settings, work)


def operator_reactivate(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.operators import reactivate_operator

    def work(services: Services) -> int:
        reactivate_operator(services.ledger, args.username, cli_actor())
        print(f"operator {args.username} reactivated")
        return 0

    return with_services(settings, work)


def audit_verify(_: argparse.Namespace, settings: Settings) -> int:
    def work(services: Services) -> int:
        report = services.auditor.verify()
        print(msgspec.json.format(msgspec.json.encode(report)).decode())
        return 0 if report.intact else 1

    return with_services(settings, work)


def privacy_export(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.privacy import export

    def work(services: Services) -> int:
        campaigns = list(services.desk.program.current().campaigns.values())
        found = export(services.ledger, args.card, campaigns)
        print(msgspec.json.format(msgspec.json.encode(found)).decode())
        return 0

    return with_services(settings, work)


def privacy_erase(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.privacy import erase

    def work(services: Services) -> int:
        done = erase(services.ledger, args.card, cli_actor(), args.reason)
        print(f"customer {done.customer_id} erased (cards {', '.join(done.cards)})")
        return 0

    return with_services(settings, work)


def privacy_sample(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.consents import SampleRequest, report_html, sample_check

    request = SampleRequest(
        size=args.size,
        seed=args.seed,
        purpose=Purpose(args.purpose) if args.purpose else None,
        start=args.start,
        end=args.end,
    )

    def work(services: Services) -> int:
        delay = timedelta(hours=settings.withdrawal_delay_h)
        report = sample_check(services.ledger, request, delay, cli_actor())
        if args.html:
            args.html.write_text(report_html(report))
        print(msgspec.json.format(msgspec.json.encode(report)).decode())
        return 0

    return with_services(settings, work)


def privacy_retention(_: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.retention import apply_retention

    def work(services: Services) -> int:
        runs = apply_retention(
            services.ledger,
            settings.retention_profile_days,
            settings.retention_auth_days,
            datetime.now(UTC),
            cli_actor(),
        )
        for run in runs:
            print(f"{run.data_class}: {run.removed} removed (older than {run.cutoff.isoformat()})")
        return 0

    return with_services(settings, work)


def privacy_policy(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.consents import publish_policy

    text = args.file.read_text()

    def work(services: Services) -> int:
        published = publish_policy(
            services.ledger, args.locale, text, datetime.now(UTC), cli_actor()
        )
        print(f"policy version {published.version} ({published.locale}): {published.sha256}")
        return 0

    return with_services(settings, work)


def privacy_rotate(_: argparse.Namespace, settings: Settings) -> int:
    def work(services: Services) -> int:
        count = services.ledger.keys.rotate()
        print(f"{count} data key(s) re-wrapped under master key {services.ledger.keys.current.id}")
        return 0

    return with_services(settings, work)


def audit_replay(args: argparse.Namespace, settings: Settings) -> int:
    from loyalty.commands.replay import replay

    def work(services: Services) -> int:
        report = replay(services.ledger, args.start, args.end)
        print(msgspec.json.format(msgspec.json.encode(report)).decode())
        return 0 if report.identical else 1

    return with_services(settings, work)


def audit_checkpoint(_: argparse.Namespace, settings: Settings) -> int:
    def work(services: Services) -> int:
        made = services.auditor.checkpoint(datetime.now(UTC))
        if made is None:
            print("the log is empty: nothing to sign")
        else:
            print(f"signed the chain up to event {made.notification_id}: {made.link.hex()}")
        return 0

    return with_services(settings, work)


if __name__ == "__main__":
    sys.exit(main())
