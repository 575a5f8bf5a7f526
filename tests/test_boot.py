"""`mmconvert verify --boot` on Debian's 7.3: the selinuxfs series, booted.

Two x86_64 tinyconfig kernels (base, series) are built once per machine
into the build cache (~8 min cold on 2 cores, the series' kernel then
rebuilds one object); each boot under TCG takes seconds.  With SELinux
built in but no policy loaded, /sys/fs/selinux/status maps and
/sys/fs/selinux/policy does not open (security_read_policy() has no
policy to read), so only sel_mmap_handle_status() is reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, clone_kernel, remove_tree, tree_state

pytestmark = pytest.mark.realtree

STATUS = "sel_mmap_handle_status -> sel_mmap_handle_status_prepare"
POLICY = "sel_mmap_policy -> sel_mmap_policy_prepare"


def mmconvert(*args) -> subprocess.CompletedProcess:
    # This checkout's mmconvert, whichever venv runs the tests.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "mmconvert", *map(str, args)],
                          capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def selinux_series(cached_kernel, tmp_path_factory):
    d = tmp_path_factory.mktemp("boot73")
    tree = clone_kernel(cached_kernel("7.3"), d / "linux-7.3")
    out = d / "series"
    r = mmconvert("series", tree, "-o", out, "--only", "security/selinux")
    assert r.returncode == 0, r.stdout + r.stderr
    yield tree, out
    remove_tree(tree)


def boot_verify(series: Path, tree: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess,
                                                                   dict]:
    before = tree_state(tree)
    j, x = tmp_path / "verify.json", tmp_path / "verify.xml"
    r = mmconvert("verify", series, "--tree", tree, "--boot", "--json", j, "--junit", x)
    assert tree_state(tree) == before
    assert j.is_file(), r.stdout + r.stderr
    data = json.loads(j.read_text())
    data["junit"] = {c.get("name"): c for c in ET.parse(x).getroot().iter("testcase")
                     if (c.get("classname") or "").startswith("boot")}
    return r, data


def test_boot_the_7_3_selinux_series_maps_alike_on_both_kernels(selinux_series, tmp_path):
    tree, series = selinux_series
    r, data = boot_verify(series, tree, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    boot = data["boot"]
    assert boot["passed"] and data["passed"]
    assert boot["differences"] == []
    by_name = {h["handler"]: h for h in boot["handlers"]}
    assert by_name[STATUS]["status"] == "same"
    assert by_name[STATUS]["paths"] == ["/sys/fs/selinux/status"]
    # No policy loaded: the policy file does not open, so its handler never runs.
    assert by_name[POLICY]["status"] == "not reached"
    assert by_name[POLICY]["detail"] == "no probed path ran it"
    assert boot["not_boot_checked"] == []
    assert boot["compared"] > 100
    assert f"{STATUS}: same (ran for /sys/fs/selinux/status)" in r.stdout
    assert f"{POLICY}: not reached: no probed path ran it" in r.stdout
    assert "boot result: PASS: 0 differences" in r.stdout
    # CI's test report says the same, a case per handler.
    cases = data["junit"]
    assert cases[STATUS].find("failure") is None and cases[STATUS].find("skipped") is None
    assert cases[POLICY].find("skipped") is not None
    assert cases["base and series kernels"].find("failure") is None


def test_boot_a_mutated_selinux_series_fails_naming_the_handler(selinux_series, tmp_path):
    """The converted status handler no longer clears VM_MAYWRITE: it still
    builds, and the mappings of /sys/fs/selinux/status gain `mw`."""
    tree, series = selinux_series
    mutated = tmp_path / "mutated"
    shutil.copytree(series, mutated)
    patch = next(mutated.glob("0001-*.patch"))
    text = patch.read_text()
    line = "+\tvma_desc_clear_flags(desc, VMA_MAYWRITE_BIT);\n"
    # sel_mmap_handle_status_prepare()'s (the policy handler's is indented twice).
    assert text.count(line) == 1
    patch.write_text(text.replace(line, "+\t/* mutated: VM_MAYWRITE left set */\n"))
    r, data = boot_verify(mutated, tree, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    boot = data["boot"]
    assert not boot["passed"] and not data["passed"]
    by_name = {h["handler"]: h for h in boot["handlers"]}
    assert by_name[STATUS]["status"] == "differs"
    assert by_name[POLICY]["status"] == "not reached"
    diffs = boot["differences"]
    assert diffs and {d["path"] for d in diffs} == {"/sys/fs/selinux/status"}
    assert all(d["handlers"] == ["sel_mmap_handle_status"] for d in diffs)
    shared = next(d for d in diffs if d["case"] == "r-shared-off0-1p")
    assert " mw " not in f" {shared['base']} " and " mw " in f" {shared['series']} "
    assert ("DIFFERS /sys/fs/selinux/status r-shared-off0-1p [sel_mmap_handle_status]"
            in r.stdout)
    assert "boot result: FAIL" in r.stdout
    failure = data["junit"][STATUS].find("failure")
    assert failure is not None and "/sys/fs/selinux/status r-shared-off0-1p" in failure.text
