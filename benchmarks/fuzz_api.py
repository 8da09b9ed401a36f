"""A long schemathesis run over every operation of /openapi.json: how many server errors generated requests find.

    python benchmarks/fuzz_api.py [--max-examples 200] [--seed 1]

One real server (uvicorn subprocess, SQLite, built-in executor) with an allowed root and a registered detect
dataset, so generated requests get past "not found" into validation and the services. Schemathesis' CLI runs
every phase (examples, coverage, fuzzing, stateful) in both modes (valid and invalid data) with only the
``not_a_server_error`` check. Its JUnit report is summarised; the suite's own bounded run is
tests/system/test_schemathesis.py. Label Studio's legacy /train answers 501 by design until issue 15 and is
left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from server import AUTH, REPO_ROOT, register_zip, running_server

sys.path.insert(0, str(REPO_ROOT))
from imagerec.datasets.synthetic import write_dataset_zip  # noqa: E402


def summarise(junit: Path) -> dict:
    suite = ElementTree.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    failed = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    return {"operations": len(cases), "operations_with_server_errors": len(failed), "failed": failed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "fuzz_api.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagerec-fuzz-") as tmp:
        work = Path(tmp)
        allowed = work / "allowed"
        allowed.mkdir()
        archive = write_dataset_zip("detect", work / "detect.zip", train=8, val=4)
        with running_server(work / "data", work / "server.log", allowed_roots=json.dumps([str(allowed)])) as client:
            register_zip(client, archive, name="fuzz", task="detect")
            junit = work / "junit.xml"
            started = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run", f"{client.base_url}/openapi.json",
                 "--header", f"Authorization: {AUTH['Authorization']}", "--checks", "not_a_server_error",
                 "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                 "--exclude-path", "/labelstudio/train", "--report", "junit", "--report-junit-path", str(junit)],
                capture_output=True, text=True, cwd=REPO_ROOT)
            seconds = time.monotonic() - started
            result = {**summarise(junit), "max_examples": args.max_examples, "seed": args.seed,
                      "seconds": round(seconds, 1), "exit_code": run.returncode,
                      "summary": run.stdout.strip().splitlines()[-12:]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print("\n".join(result["summary"]))
    print(f"{result['operations']} operations, {result['operations_with_server_errors']} with server errors, "
          f"{result['seconds']} s")
    return 0 if result["operations_with_server_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
