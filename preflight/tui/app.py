"""PreflightApp: holds the run (RunState), owns the collection and judging workers, pushes the fleet screen.

Workers run in threads and only post messages; every change to the state happens on the UI thread.
Live: each node is judged on its own (node-scope checks) as soon as it answers, in the fan-out
thread that received it; the whole partial bundle is re-judged (fleet checks need every node)
at most every `judge_interval` seconds and never twice at once.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState, get_current_worker

from preflight.collect.bundle import Bundle, save_bundle
from preflight.engine import FactsCache, judge
from preflight.registry import all_checks
from preflight.results import EXIT_CANNOT_RUN, exit_code
from preflight.session import LiveSession
from preflight.tui.messages import CheckJudged, FleetJudged, NodeJudged, NodeStarted, RunFinished
from preflight.tui.source import BundleSource, LiveSource, RunSource
from preflight.tui.state import Pending, RunState, group_map, specs_by_scope


class PreflightApp(App[int]):
    CSS_PATH = "preflight.tcss"
    TITLE = "preflight"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit_app", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("p", "plan", "plan"),
        Binding("s", "save_bundle", "save", show=False),  # in the help panel; the footer keeps to 80 columns
        Binding("e", "export_json", "export", show=False),
    ]

    def __init__(self, source: RunSource, *, model: str | None = None, output_dir: str | Path | None = None,
                 judge_interval: float = 0.3) -> None:
        super().__init__()
        self.source = source
        self.model_name = model
        self.output_dir = Path(output_dir) if output_dir is not None else Path.cwd()
        self.judge_interval = judge_interval
        self.groups_of = group_map()
        self.specs = {s.id: s for s in all_checks()}
        # live: the session's stop event ends the fan-out on quit, re-running a node reuses its open
        # connection, and each node's facts are parsed once, as it answers, for every judge after
        self._session: LiveSession | None = None
        self._facts: FactsCache | None = None
        if isinstance(source, BundleSource):
            self.state = RunState.from_bundle(source.bundle)
            self.collecting = False
        else:
            self._session = LiveSession(source.request, keep_connections=True)
            self._facts = self._session.facts
            names = [n.name for n in source.request.nodes]
            self.state = RunState.for_nodes(names, Bundle(nodes=[], inventory={"path": source.request.inventory_path}))
            self.collecting = True
        self._dirty = isinstance(source, BundleSource)
        self._judging = False
        self._collected_once = False
        self._painted = False  # judging waits for the first frame of the fleet table (it holds the GIL)
        self.last_written: Path | None = None

    # ----- lifecycle
    def on_mount(self) -> None:
        from preflight.tui.screens.fleet import FleetScreen

        self.push_screen(FleetScreen())
        self.set_interval(self.judge_interval, self._maybe_judge)
        if isinstance(self.source, LiveSource):
            self.collect_nodes([n.name for n in self.source.request.nodes])

    def fleet_painted(self) -> None:
        """Called by the fleet screen after its first frame: judging may start."""
        self._painted = True
        self._maybe_judge()

    @property
    def is_live(self) -> bool:
        return isinstance(self.source, LiveSource)

    @property
    def judging(self) -> bool:
        return self._judging or self._dirty

    # ----- workers (threads: they only post messages)
    @work(thread=True, group="collect", exit_on_error=False, description="collect nodes")
    def collect_nodes(self, names: list[str]) -> None:
        assert self._session is not None
        worker = get_current_worker()
        node_specs = specs_by_scope("node")

        def on_event(kind: str, name: str, raw: Any) -> None:
            if worker.is_cancelled:
                return
            if kind == "started":
                self.post_message(NodeStarted(name))
            elif kind == "finished" and raw is not None:  # expectations attached, facts parsed: by the session
                rep, facts = judge(Bundle(nodes=[raw]), node_specs, cache=self._facts)
                self.post_message(NodeJudged(raw, rep, facts))

        bundle = self._session.collect(names, on_event=on_event)
        if not worker.is_cancelled:
            self.post_message(RunFinished(bundle))

    @work(thread=True, group="judge", exit_on_error=False, description="judge the fleet")
    def judge_fleet(self, bundle: Bundle, versions: dict[str, int]) -> None:
        report, facts = judge(bundle, cache=self._facts)
        self.post_message(FleetJudged(report, facts, versions))

    @work(thread=True, group="check", exit_on_error=False, description="re-run a check")
    def judge_check(self, check_id: str, bundle: Bundle) -> None:
        report, _facts = judge(bundle, [self.specs[check_id]], cache=self._facts)
        self.post_message(CheckJudged(check_id, report))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            if event.worker.group == "judge":
                self._judging = False
            self.notify(f"{event.worker.group} failed: {event.worker.error}", severity="error", timeout=10)

    def _maybe_judge(self) -> None:
        if self._dirty and self._painted and not self._judging and self.state.raws:
            self._dirty = False
            self._judging = True
            bundle, versions = self.state.snapshot()
            self.judge_fleet(bundle, versions)

    # ----- messages from the workers
    def on_node_started(self, message: NodeStarted) -> None:
        self.state.pending[message.name] = Pending(since=time.monotonic())
        self.state_changed([message.name])

    def on_node_judged(self, message: NodeJudged) -> None:
        version = self.state.add_raw(message.raw)
        self.state.apply(message.report, message.facts, {message.raw.name: version}, fleet_scope=False)
        self.state.pending.pop(message.raw.name, None)
        self._dirty = True
        self.state_changed([message.raw.name])

    def on_fleet_judged(self, message: FleetJudged) -> None:
        self._judging = False
        changed = self.state.apply(message.report, message.facts, message.versions)
        self.state_changed(changed)

    def on_check_judged(self, message: CheckJudged) -> None:
        changed = self.state.replace_check(message.check_id, message.report)
        self.state_changed(changed)
        where = "the recorded facts of" if not self.is_live else "the facts collected from"
        self.notify(f"re-judged {message.check_id} on {where} {len(message.report.nodes)} nodes "
                    f"({len(changed)} changed)", title="re-run check")

    def on_run_finished(self, message: RunFinished) -> None:
        if not self._collected_once:
            self.state.template = dataclasses.replace(message.bundle, nodes=[])
            self._collected_once = True
        self.collecting = False
        self._dirty = True
        assert isinstance(self.source, LiveSource)
        if self.source.request.save:
            path = save_bundle(self.state.bundle(), self.source.request.save)
            self.notify(f"bundle saved: {path}", title="save")
        self.state_changed([])

    def state_changed(self, names: list[str]) -> None:
        for screen in self.screen_stack:
            hook = getattr(screen, "state_changed", None)
            if hook is not None:
                hook(names)

    # ----- commands the screens call
    def rerun_node(self, name: str) -> None:
        if self.is_live:
            self.state.pending[name] = Pending(note="re-run")
            self.state_changed([name])
            self.collect_nodes([name])
            self.notify(f"collecting {name} again", title="re-run node")
        else:
            self.state.pending[name] = Pending(note="re-judging")
            self._dirty = True
            self.state_changed([name])
            self.notify(f"a bundle holds recorded facts: re-judging {name}'s recordings (nothing is collected)",
                        title="re-run node")

    def open_node(self, name: str, *, group: str | None = None) -> None:
        """The node screen (screens open each other through the app, so none imports another)."""
        from preflight.tui.screens.node import NodeScreen

        self.push_screen(NodeScreen(name, group=group))

    def open_check(self, *, check_id: str | None = None, group: str | None = None) -> None:
        from preflight.tui.screens.check import CheckScreen

        self.push_screen(CheckScreen(group=group, check_id=check_id))

    def rerun_check(self, check_id: str) -> None:
        bundle, _ = self.state.snapshot()
        self.judge_check(check_id, bundle)

    def _stamp(self) -> str:
        return time.strftime("%Y%m%d-%H%M%S")

    def action_save_bundle(self) -> None:
        target: str | Path = self.output_dir / f"preflight-bundle-{self._stamp()}"
        if self.is_live and self.source.request.save:  # type: ignore[union-attr]
            target = self.source.request.save  # type: ignore[union-attr]
        try:
            path = save_bundle(self.state.bundle(), target)
        except OSError as exc:
            self.notify(f"could not save the bundle: {exc}", severity="error")
            return
        self.last_written = path
        self.notify(f"bundle saved: {path} ({len(self.state.raws)} nodes)", title="save")

    def action_export_json(self) -> None:
        from preflight.report.json_report import dumps, report_dict

        path = self.output_dir / f"preflight-report-{self._stamp()}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(report_dict(self.state.run_report(), source=self.source.json_source())))
        except OSError as exc:
            self.notify(f"could not write the report: {exc}", severity="error")
            return
        self.last_written = path
        self.notify(f"JSON report written: {path}", title="export")

    def action_help(self) -> None:
        from preflight.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_plan(self) -> None:
        from preflight.tui.screens.plan import PlanScreen

        if not isinstance(self.screen, PlanScreen):
            self.push_screen(PlanScreen())

    def final_code(self) -> int:
        if self.collecting or not self.state.reports:
            return EXIT_CANNOT_RUN
        return exit_code(self.state.run_report())

    def action_quit_app(self) -> None:
        if self._session is not None:  # the fan-out stops, its connections close; no thread keeps the process alive
            self._session.close()
        for w in self.workers:
            w.cancel()
        self.exit(self.final_code())
