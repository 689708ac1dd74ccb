"""`wmrobust preview` writes a picture and refuses unknown tasks."""

import matplotlib.image

from wmrobust.cli import main


def test_preview_writes_png(tmp_path):
    out = tmp_path / "perturbations.png"
    argv = ["--task", "walker_walk", "--out", str(out), "--image-size", "16", "--steps", "3", "--render", "fast"]
    assert main(["preview", *argv]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(out).shape
    assert min(width, height) > 100


def test_preview_unknown_task(tmp_path, capsys):
    assert main(["preview", "--task", "walker_fly", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "walker_fly" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
