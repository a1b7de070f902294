"""Kill drill: SIGKILL `training/train_mvvton.py` at random moments and inside save windows, resume with
`--resume latest` (no manual step), and check that every resumed run ends bit-identical to an uninterrupted one.

    OMP_NUM_THREADS=1 python benchmarks/kill_drill.py --workdir /tmp/kill_drill --kills 10 --seed 0

Tiny config (`configs/train/tiny.yaml`, random tiny components, procedural data), 6 steps, a checkpoint every 2 steps,
`checkpoints_total_limit: 1` (the harshest rotation). Save windows are hit deterministically with the
`MVVTON_PAUSE_AT` test hook (`mvvton.utils.atomic.pause_point`): the trainer announces the point and sleeps there
until it is killed. Random kills wait, after the first logged step, a uniformly drawn fraction of the
uninterrupted run's training time.

Per kill it reports: the last step logged before the kill, the checkpoint the resume started from (and the incomplete
ones it said it skipped), the steps lost (<= one save interval is the guarantee), and whether the final weights and
`loss_log.jsonl` are byte-identical to the uninterrupted run (every file of `final/`; of its `train_config.yaml` all
but `output_dir` and `resume_from_checkpoint`). Writes `<workdir>/report.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS, SAVE_INTERVAL = 6, 2
SAVE_WINDOWS = (  # (pause point, step): inside the save of checkpoint-4, after step 4's log line, inside final/
    ("checkpoint.components", 4),
    ("checkpoint.staged", 4),
    ("checkpoint.published", 4),
    ("log.appended", 4),
    ("final.staged", None),
)


def train_command(
    output_dir: Path, *extra: str, max_steps: int = MAX_STEPS, checkpointing_steps: int = SAVE_INTERVAL
) -> list[str]:
    """The tiny training run used by the drill and by tests/training/test_kill_resume.py."""
    overrides = {
        "model.component_configs": REPO / "configs/model/tiny",
        "logging.report_to": "none",
        "schedule.max_train_steps": max_steps,
        "schedule.lr_scheduler": "cosine",
        "checkpointing.checkpointing_steps": checkpointing_steps,
        "checkpointing.checkpoints_total_limit": 1,
    }
    command = [sys.executable, str(REPO / "training" / "train_mvvton.py"), "--config", str(REPO / "configs/train/tiny.yaml"),
               "--output_dir", str(output_dir)]  # fmt: skip
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    return command + list(extra)


def child_env(pause_at: str | None = None, pause_file: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    env.pop("MVVTON_PAUSE_AT", None)
    if pause_at is not None:
        env.update(MVVTON_PAUSE_AT=pause_at, MVVTON_PAUSE_FILE=str(pause_file), MVVTON_PAUSE_SECONDS="600")
    return env


def run_to_end(command: list[str], log_path: Path, timeout: float = 1800) -> str:
    """Run a command to completion (stderr + stdout to `log_path`); returns the log text; raises on failure."""
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=REPO, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                                   timeout=timeout)  # fmt: skip
    text = log_path.read_text()
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{text[-3000:]}")
    return text


def start_and_kill_at_pause(
    command: list[str], pause_at: str, workdir: Path, log_path: Path, timeout: float = 900
) -> dict:
    """Start `command` with the pause hook at `pause_at`, wait until it announces the pause, SIGKILL it by PID."""
    pause_file = workdir / f"pause-{time.monotonic_ns()}.json"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=child_env(pause_at, pause_file), stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + timeout
        while not pause_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"run ended ({process.returncode}) before pausing at {pause_at}:\n"
                                   f"{log_path.read_text()[-3000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"no pause at {pause_at} within {timeout} s")
            time.sleep(0.05)
        announced = json.loads(pause_file.read_text())
        os.kill(announced["pid"], signal.SIGKILL)
        process.wait()
    pause_file.unlink()
    return {"killed_pid": announced["pid"], "returncode": process.returncode}


def start_and_kill_after(command: list[str], output_dir: Path, delay: float, log_path: Path) -> dict:
    """Start `command`, wait for its first loss-log line, SIGKILL it by PID `delay` seconds later (or report that it
    finished first)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        while not (output_dir / "loss_log.jsonl").exists() and process.poll() is None:
            time.sleep(0.05)
        try:
            process.wait(timeout=delay)
            return {"killed_pid": None, "returncode": process.returncode}
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return {"killed_pid": process.pid, "returncode": process.returncode}


def logged_steps(output_dir: Path) -> list[int]:
    path = output_dir / "loss_log.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass  # a torn line
    return steps


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below `folder`; `train_config.yaml` is hashed without the two keys that
    name the run rather than the model (`output_dir`, `resume_from_checkpoint`)."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        content = path.read_bytes()
        if path.name == "train_config.yaml":
            config = yaml.safe_load(content)
            for key in ("output_dir", "resume_from_checkpoint"):
                config.pop(key, None)
            content = yaml.safe_dump(config).encode()
        digests[path.relative_to(folder).as_posix()] = hashlib.sha256(content).hexdigest()
    return digests


def leftovers(output_dir: Path) -> list[str]:
    return sorted(path.name for path in output_dir.rglob(".*") if path.name != ".gitignore")


@dataclass
class KillResult:
    kind: str  # "save window" or "random"
    point: str
    killed: bool
    last_logged_step_at_kill: int
    folders_at_kill: list[str]
    resumed_from_step: int
    skipped: list[str] = field(default_factory=list)
    lost_steps: int = 0
    final_identical: bool = False
    loss_log_identical: bool = False
    leftovers_after_resume: list[str] = field(default_factory=list)
    resume_seconds: float = 0.0


def resume_and_check(output_dir: Path, reference: Path, log_path: Path) -> dict:
    started = time.perf_counter()
    text = run_to_end(train_command(output_dir, "--resume", "latest"), log_path)
    seconds = time.perf_counter() - started
    match = re.search(r"resuming from .*checkpoint-(\d+)", text)
    checks = {
        "resumed_from_step": int(match.group(1)) if match else 0,
        "skipped": re.findall(r"skipping incomplete checkpoint (\S+): ([^\n]+)", text),
        "final_identical": tree_digest(output_dir / "final") == tree_digest(reference / "final"),
        "loss_log_identical": (output_dir / "loss_log.jsonl").read_bytes()
        == (reference / "loss_log.jsonl").read_bytes(),
        "leftovers_after_resume": leftovers(output_dir),
        "resume_seconds": round(seconds, 1),
    }
    return checks


def run_trial(workdir: Path, index: int, kind: str, point: str, reference: Path, train_seconds: float) -> KillResult:
    """One kill (at a pause point, or a fraction `point` of the training time after the first step) + resume."""
    output_dir = workdir / f"kill-{index:02d}"
    if output_dir.exists():
        shutil.rmtree(output_dir)
    log_path = workdir / f"kill-{index:02d}.log"
    if kind == "save window":
        outcome = start_and_kill_at_pause(train_command(output_dir), point, workdir, log_path)
    else:
        outcome = start_and_kill_after(train_command(output_dir), output_dir, float(point) * train_seconds, log_path)
    at_kill = logged_steps(output_dir)
    folders = sorted(path.name for path in output_dir.iterdir()) if output_dir.exists() else []
    checks = resume_and_check(output_dir, reference, workdir / f"kill-{index:02d}-resume.log")
    last = max(at_kill, default=0)
    return KillResult(
        kind=kind,
        point=point,
        killed=outcome["killed_pid"] is not None,
        last_logged_step_at_kill=last,
        folders_at_kill=folders,
        resumed_from_step=checks["resumed_from_step"],
        skipped=[f"{name}: {reason}" for name, reason in checks["skipped"]],
        lost_steps=max(last - checks["resumed_from_step"], 0),
        final_identical=checks["final_identical"],
        loss_log_identical=checks["loss_log_identical"],
        leftovers_after_resume=checks["leftovers_after_resume"],
        resume_seconds=checks["resume_seconds"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="trials run side by side (one thread each)")
    parser.add_argument("--recheck", action="store_true", help="only compare the finished kill-NN folders again")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.recheck:
        reference = args.workdir / "uninterrupted"
        for output_dir in sorted(args.workdir.glob("kill-??")):
            same_final = tree_digest(output_dir / "final") == tree_digest(reference / "final")
            same_log = (output_dir / "loss_log.jsonl").read_bytes() == (reference / "loss_log.jsonl").read_bytes()
            print(f"{output_dir.name}: final_identical={same_final} log_identical={same_log} "
                  f"leftovers={leftovers(output_dir)}")  # fmt: skip
        return
    rng = random.Random(args.seed)

    reference = args.workdir / "uninterrupted"
    if not (reference / "final" / "model_index.json").is_file():
        run_to_end(train_command(reference), args.workdir / "uninterrupted.log")
    done = re.search(r"done: step \d+, ([\d.]+) s", (args.workdir / "uninterrupted.log").read_text())
    train_seconds = float(done.group(1))
    print(f"uninterrupted run: {train_seconds:.1f} s of training, final/ has {len(tree_digest(reference / 'final'))} "
          "files", flush=True)  # fmt: skip

    plan = [("save window", f"{point}:{step}" if step is not None else point) for point, step in SAVE_WINDOWS]
    plan = plan[: args.kills]
    while len(plan) < args.kills:
        plan.append(("random", f"{rng.uniform(0.0, 1.0):.3f}"))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_trial, args.workdir, index, kind, point, reference, train_seconds)
                   for index, (kind, point) in enumerate(plan, 1)]  # fmt: skip
        results = []
        for index, future in enumerate(futures, 1):
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - a failed resume is a drill result, not a crash
                print(f"[{index:2d}] FAILED: {error}", flush=True)
                results.append(None)
                continue
            results.append(result)
            print(f"[{index:2d}] {result.kind:11s} {result.point:26s} killed={result.killed} "
                  f"last_logged={result.last_logged_step_at_kill} resumed_from={result.resumed_from_step} "
                  f"lost={result.lost_steps} skipped={result.skipped} final_identical={result.final_identical} "
                  f"log_identical={result.loss_log_identical} leftovers={result.leftovers_after_resume}",
                  flush=True)  # fmt: skip

    finished = [result for result in results if result is not None]
    summary = {
        "trials": len(results),
        "killed": sum(result.killed for result in finished),
        "resumed_to_the_end": len(finished),
        "max_lost_steps": max((result.lost_steps for result in finished), default=0),
        "save_interval": SAVE_INTERVAL,
        "all_final_identical": all(result.final_identical for result in finished),
        "all_loss_logs_identical": all(result.loss_log_identical for result in finished),
        "no_leftovers": not any(result.leftovers_after_resume for result in finished),
        "uninterrupted_training_seconds": train_seconds,
    }
    report = {"summary": summary, "kills": [asdict(result) if result else None for result in results]}
    (args.workdir / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(summary, indent=1))
    ok = (
        len(finished) == len(results)
        and summary["max_lost_steps"] <= SAVE_INTERVAL
        and summary["all_final_identical"]
        and summary["all_loss_logs_identical"]
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
