"""simhw calibrate-engine: fit a serving engine's overheads to measured iteration times."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

import simhw
from simhw.cli import main
from simhw.engine_fit import FIELDS, cost_iterations, fit_engine, predict_s, read_iterations
from simhw.workload.from_yaml import workload_from_dict

TRUE = (3e-3, 120e-6, 0.3e-3, 2e-3)          # step, per sequence, host per layer, per worker


def _csv(tmp_path, rows):
    path = tmp_path / "iters.csv"
    path.write_text("model,mode,tp,batch,tokens,measured_s\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _synthetic(tmp_path):
    """Iterations whose 'measured' times are simhw's GPU time plus a known engine."""
    grid = [(m, mode, tp, b, t) for m in ("llama2-7b", "llama2-13b") for mode in ("prefill", "decode")
            for tp in (1, 2, 4) for b in (1, 8, 32) for t in (256, 1024)]
    path = _csv(tmp_path, [(*g, 1.0) for g in grid])
    rows = cost_iterations(read_iterations(path), simhw.load_hw("a100"))
    rows = [dataclasses.replace(r, measured_s=predict_s(r, TRUE)) for r in rows]
    return path, rows


def test_recovers_a_known_engine(tmp_path):
    _, rows = _synthetic(tmp_path)
    fit = fit_engine(rows)
    for field, true in zip(FIELDS, TRUE):
        assert fit.values_s[field] == pytest.approx(true, rel=0.05, abs=2e-6), field
    assert fit.after[1] < 0.01


def test_cli_writes_an_engine_block_a_workload_accepts(tmp_path, capsys):
    path, rows = _synthetic(tmp_path)
    _csv(tmp_path, [(r.model, r.mode, r.tp, r.batch, r.tokens, r.measured_s) for r in rows])
    out = tmp_path / "engine.yaml"
    assert main(["calibrate-engine", str(path), "--hw", "a100", "-o", str(out)]) == 0
    assert "held-back error with the fitted engine" in capsys.readouterr().out
    block = yaml.safe_load(out.read_text())["engine"]
    assert set(block) == set(FIELDS)
    wl = workload_from_dict({"model": "llama2-7b", "mode": "decode", "seq_len": 512, "engine": block}, "w")
    assert wl.engine.per_worker_s == pytest.approx(TRUE[3], rel=0.05)


@pytest.mark.parametrize("text, needle", [
    ("model,mode,tp,batch,measured_s\nllama2-7b,decode,1,1,0.01\n", "missing column(s) tokens"),
    ("model,mode,tp,batch,tokens,measured_s\nllama2-7b,train,1,1,128,0.01\n", "line 2: mode 'train'"),
    ("model,mode,tp,batch,tokens,measured_s\nllama2-7b,decode,one,1,128,0.01\n", "line 2: tp, pp, batch"),
    ("model,mode,tp,batch,tokens,measured_s\nllama2-7b,decode,1,1,128,-1\n", "measured_s positive"),
    ("model,mode,tp,batch,tokens,measured_s\nllama9,decode,1,1,128,0.01\n", "unknown model 'llama9'"),
])
def test_bad_iteration_files(tmp_path, capsys, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    out = tmp_path / "engine.yaml"
    assert main(["calibrate-engine", str(path), "--hw", "a100", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["calibrate", "calibrate-engine"])
def test_train_share_out_of_range(tmp_path, capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "x.csv", "--hw", "a100", "-o", str(tmp_path / "o.yaml"), "--train-share", "2"])
    assert exc.value.code == 2
    assert "expected a share between 0.05 and 0.95" in capsys.readouterr().err
