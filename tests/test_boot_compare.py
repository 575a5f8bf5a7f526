"""The parts of `verify --boot` that need no kernel build: which handlers a
series converts, which CONFIG_ symbols build an object in, and how two
boots' outcomes are compared and attributed to a handler."""

from __future__ import annotations

from pathlib import Path

from conftest import run_mmconvert

from mmconvert import boot
from mmconvert.boot import Boot, Handler, Outcome

DIFF = """diff --git a/drivers/foo/foo.c b/drivers/foo/foo.c
--- a/drivers/foo/foo.c
+++ b/drivers/foo/foo.c
@@ -1,4 +1,4 @@
 static const struct file_operations foo_fops = {
-\t.mmap\t\t= foo_mmap,
+\t.mmap_prepare\t= foo_mmap_prepare,
 };
"""


def test_the_converted_handlers_come_from_the_initialisers():
    assert boot.handlers_of({"drivers/foo/foo.c": DIFF}) == [
        Handler("foo_mmap", "foo_mmap_prepare", "drivers/foo/foo.c")]


def test_an_objects_symbols_follow_its_makefile_and_directory_chain(tmp_path: Path):
    (tmp_path / "drivers" / "foo").mkdir(parents=True)
    (tmp_path / "drivers" / "Makefile").write_text("obj-$(CONFIG_FOO_BUS) += foo/\n")
    (tmp_path / "drivers" / "foo" / "Makefile").write_text(
        "obj-$(CONFIG_FOO) := foo-drv.o\nfoo-drv-y := core.o \\\n\tfoo.o\n"
        "foo-drv-$(CONFIG_FOO_EXTRA) += extra.o\n")
    assert boot.symbols_for(tmp_path, "drivers/foo/foo.o").symbols == ("FOO", "FOO_BUS")
    assert boot.symbols_for(tmp_path, "drivers/foo/extra.o").symbols == (
        "FOO_EXTRA", "FOO", "FOO_BUS")
    missing = boot.symbols_for(tmp_path, "drivers/foo/gone.o")
    assert missing.reason == "no line of drivers/foo/Makefile builds gone.o"


def _boot(kernel: str, flags: str, called: tuple[str, ...]) -> Boot:
    return Boot(kernel, True, "", {("/dev/foo", "r-shared-off0-1p"): Outcome("ok", "rw", flags),
                                   ("memfd", "r-shared-off0-1p"): Outcome("ok", "rw", "rd sh")},
                {"/dev/foo": called, "memfd": ()})


def test_a_difference_names_the_handler_that_ran_for_its_path():
    h = [Handler("foo_mmap", "foo_mmap_prepare", "drivers/foo/foo.c"),
         Handler("bar_mmap", "bar_mmap_prepare", "drivers/bar/bar.c")]
    diffs, results = boot.compare(_boot("base", "rd sh dd", ("foo_mmap",)),
                                  _boot("series", "rd sh", ("foo_mmap_prepare",)), h)
    assert [(d.path, d.case, d.base, d.series, d.handlers) for d in diffs] == [
        ("/dev/foo", "r-shared-off0-1p", "ok [rd sh dd]", "ok [rd sh]", ("foo_mmap",))]
    assert [(r.status, r.paths) for r in results] == [("differs", ("/dev/foo",)),
                                                      ("not reached", ())]


def test_the_same_outcomes_pass_and_say_where_the_handler_ran():
    h = [Handler("foo_mmap", "foo_mmap_prepare", "drivers/foo/foo.c")]
    diffs, results = boot.compare(_boot("base", "rd sh", ("foo_mmap",)),
                                  _boot("series", "rd sh", ("foo_mmap_prepare",)), h)
    assert diffs == [] and results[0].status == "same"


def test_boot_on_a_tree_that_is_not_a_kernel_is_one_line(sample_tree, tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "0001-foo.patch").write_text(
        "From: a <a@b.invalid>\nSubject: [PATCH] foo: convert\n\n---\n" + DIFF)
    r = run_mmconvert("verify", series, "--tree", sample_tree, "--base", "HEAD", "--boot")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines()[-1] == (f"mmconvert: {sample_tree}: --boot needs a Linux kernel tree with "
                        "arch/x86 (it boots x86_64 kernels)")
    assert "Traceback" not in r.stderr


BEGIN, END = boot.START, boot.END


def _console(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def _parse(text: str, finished: bool = True) -> Boot:
    return boot.parse_console("series", text, finished, 240, Boot("series", False, "",
                                                                  seconds=3.0))


def test_the_probes_records_are_read_between_its_markers_past_kernel_messages():
    b = _parse(_console(
        "SeaBIOS", "\x1bc\x1b[2J" + BEGIN,
        '{"trace_filter":"foo_mmap_prepare","result":"ok"}',
        '{"path":"/dev/foo","mode":"rw","case":"r-shared-off0-1p","result":"ok",'
        '"vmflags":"rd sh","sum":""}',
        "[    1.0] a kernel message",
        '{"path":"/dev/bar","open":"EACCES"}',
        '{"path":"/dev/foo","called":["foo_mmap_prepare"]}', '{"paths":2}', END))
    assert b.ok and b.paths == 2
    assert b.outcomes == {("/dev/foo", "r-shared-off0-1p"): Outcome("ok", "rw", "rd sh"),
                          ("/dev/bar", "open"): Outcome("EACCES")}
    assert b.called == {"/dev/foo": ("foo_mmap_prepare",)}


def test_a_kernel_that_never_starts_the_probe_fails_with_the_consoles_tail():
    b = _parse(_console("Kernel panic - not syncing: VFS: Unable to mount root fs"))
    assert not b.ok
    assert b.error.startswith("series kernel: no probe output after 3.0 s (the probe never "
                              "started); console tail:\n")
    assert b.error.endswith("Unable to mount root fs")


def test_a_probe_that_stops_before_its_end_marker_fails():
    crashed = _parse(_console(BEGIN, '{"paths":1}', "Kernel panic - not syncing: Attempted "
                              "to kill init!"))
    assert not crashed.ok and "the probe crashed before the probe's end marker" in crashed.error
    slow = _parse(_console(BEGIN, '{"paths":1}'), finished=False)
    assert not slow.ok and "timed out after 240 s before the probe's end marker" in slow.error
