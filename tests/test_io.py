"""save / load round trips; corrupt, truncated, foreign and other-version files fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bayesmix as bm


def test_round_trip_gives_identical_predictions(fit3, tmp_path):
    path = bm.save(fit3, tmp_path / "fit.nc")
    assert path.exists() and path.with_suffix(".json").exists()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["spec_hash"] == fit3.posterior.attrs["bayesmix_spec_hash"]
    assert sidecar["saved_with"]["pymc"] and sidecar["fitted_with"]["bayesmix"] == bm.__version__
    loaded = bm.load(path, expected=bm.MixingLaw())
    mixtures = {"web": 0.3, "code": 0.3, "papers": 0.4}
    np.testing.assert_array_equal(bm.predict(loaded, mixtures, seed=4), bm.predict(fit3, mixtures, seed=4))
    assert bm.health(loaded) == bm.health(fit3)
    assert (
        bm.load(path.with_suffix(".json")).posterior.attrs["bayesmix_spec"]
        == fit3.posterior.attrs["bayesmix_spec"]
    )


def test_truncated_or_changed_file_is_refused(fit3, tmp_path):
    path = bm.save(fit3, tmp_path / "fit.nc")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(bm.IncompatibleFileError, match="truncated"):
        bm.load(path)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(bm.IncompatibleFileError, match="checksum"):
        bm.load(path)


def test_missing_or_corrupt_sidecar_is_refused(fit3, tmp_path):
    path = bm.save(fit3, tmp_path / "fit.nc")
    sidecar = path.with_suffix(".json")
    sidecar.write_text("{not json")
    with pytest.raises(bm.IncompatibleFileError, match="not a valid bayesmix sidecar"):
        bm.load(path)
    sidecar.unlink()
    with pytest.raises(bm.IncompatibleFileError, match="does not exist"):
        bm.load(path)


def test_other_version_or_spec_is_refused(fit3, tmp_path):
    path = bm.save(fit3, tmp_path / "fit.nc")
    sidecar_path = path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    with pytest.raises(bm.IncompatibleFileError, match="expected"):
        bm.load(path, expected=bm.MixingLaw(exponent=0.5))
    other_spec = bm.models.ModelSpec.from_json(fit3.posterior.attrs["bayesmix_spec"])
    other_spec = bm.models.ModelSpec(**{**other_spec.__dict__, "nu": 3.0})
    with pytest.raises(bm.IncompatibleFileError, match="another spec"):
        bm.load(path, expected=other_spec)
    sidecar["fitted_with"]["bayesmix"] = "0.0.1"
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(bm.IncompatibleFileError, match=r"bayesmix 0\.0\.1"):
        bm.load(path)
    assert bm.load(path, allow_other_version=True) is not None
    sidecar["format"] = 99
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(bm.IncompatibleFileError, match="file format 99"):
        bm.load(path)


def test_not_a_fit_cannot_be_saved(tmp_path):
    with pytest.raises(bm.InputError, match="not a bayesmix fit"):
        bm.save(object(), tmp_path / "x.nc")


def test_a_save_that_cannot_fit_is_refused_before_writing_and_exits_cleanly(fit3, tmp_path):
    """Under a file-size limit the save is refused with the documented error and a normal exit."""
    import subprocess
    import sys

    child = (
        "import resource, signal, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "import bayesmix as bm\n"
        "idata = bm.load(sys.argv[1])\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    bm.save(idata, sys.argv[2])\n"
        "except bm.BayesmixError as err:\n"
        "    print('refused:', err, file=sys.stderr)\n"
        "    sys.exit(2)\n"
    )
    source = bm.save(fit3, tmp_path / "source.nc")
    out = subprocess.run([sys.executable, "-c", child, str(source), str(tmp_path / "big.nc")], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr[-500:]
    assert "file-size limit" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("big*"))
