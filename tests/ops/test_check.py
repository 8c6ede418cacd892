"""``botyard check BOT.yml``: every error and warning of a bot file in one run, no training."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from botyard.ops.cli.main import main
from tests.models.test_validation import PLANTED, PLANTED_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def test_one_run_lists_all_ten_planted_problems_and_the_warnings():
    out = subprocess.run([sys.executable, "-m", "botyard", "check", str(PLANTED)], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert [line.split(": ")[1] for line in errors] == PLANTED_FIELDS
    assert all(line.startswith(f"{PLANTED}: ") for line in errors)
    assert "intents.100_NIGHT_TRIAL_OFFER: error: intent names are identifiers" in out.stdout
    assert "use 'intent_100_NIGHT_TRIAL_OFFER'?" in out.stdout
    warnings = [line.split(": ")[1] for line in lines if ": warning: " in line]
    assert warnings == ["intents.greet.examples[2]", "intents.goodbye.examples", "intents.track_order"]
    assert lines[-1] == f"FAILED: {PLANTED}: 10 errors, 3 warnings"


def test_json_output_and_exit_status(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(PLANTED), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and [e["field"] for e in report["errors"]] == PLANTED_FIELDS
    assert len(report["warnings"]) == 3 and set(report["warnings"][0]) == {"field", "problem"}

    assert main(["check", str(ROOT / "examples" / "shop-support.yml")]) == 0
    assert capsys.readouterr().out.startswith("OK: ")

    warned = yaml.safe_load((ROOT / "examples" / "shop-support.yml").read_text())
    warned["intents"]["greeting"]["examples"].append(warned["intents"]["greeting"]["examples"][0])
    (tmp_path / "warned.yml").write_text(yaml.safe_dump(warned))
    assert main(["check", "warned.yml"]) == 0  # warnings alone pass
    said = capsys.readouterr().out
    assert ": warning: duplicate example" in said and said.splitlines()[-1].endswith(": 0 errors, 1 warning")

    assert main(["check", "missing.yml"]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "broken.yml").write_text("tenant: [unclosed")
    assert main(["check", "broken.yml"]) == 1
    assert "(file): error: not valid YAML" in capsys.readouterr().out


def test_train_refuses_with_every_problem_at_once_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(PLANTED)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"botyard: error: {PLANTED}: 10 problems\n")
    assert all(f"{PLANTED}: {field}: " in err for field in PLANTED_FIELDS)
    assert not (tmp_path / ".botyard").exists()  # refused before any store was opened


def test_train_and_demo_read_bot_files_with_their_warnings_printed(tmp_path):
    import io

    from botyard.ops.cli.check import load_checked

    data = yaml.safe_load((ROOT / "examples" / "shop-support.yml").read_text())
    data["intents"]["greeting"]["examples"].append(data["intents"]["greeting"]["examples"][0])
    (tmp_path / "bot.yml").write_text(yaml.safe_dump(data))
    out = io.StringIO()
    definition = load_checked(tmp_path / "bot.yml", out)
    assert definition.intent("greeting").examples == tuple(data["intents"]["greeting"]["examples"][:-1])
    assert out.getvalue().startswith(f"{tmp_path / 'bot.yml'}: intents.greeting.examples[") and ": warning: duplicate" in out.getvalue()
