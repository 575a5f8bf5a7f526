"""`mmconvert check`: a maintainer's CI gate for new `.mmap` users, on real
patches made with git from the sample tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, run_mmconvert, tree_state

NEWDEV = """\
// SPDX-License-Identifier: GPL-2.0
/* newdev - a new driver that still uses .mmap */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

static const struct vm_operations_struct newdev_vm_ops = {
};

static int newdev_mmap(struct file *file, struct vm_area_struct *vma)
{
\tif (vma->vm_pgoff)
\t\treturn -EINVAL;

\tvma->vm_ops = &newdev_vm_ops;
\treturn 0;
}

static const struct file_operations newdev_fops = {
\t.owner\t\t= THIS_MODULE,
\t.mmap\t\t= newdev_mmap,
\t.llseek\t\t= noop_llseek,
};

/* Opened for status only: nothing to map. */
static const struct file_operations newdev_status_fops = {
\t.owner\t\t= THIS_MODULE,
\t.mmap\t\t= NULL,
};

static struct miscdevice newdev_misc = {
\t.minor\t\t= MISC_DYNAMIC_MINOR,
\t.name\t\t= "newdev",
\t.fops\t\t= &newdev_fops,
};

module_misc_device(newdev_misc);
MODULE_LICENSE("GPL");
"""

FIELDSDEV = "drivers/char/fieldsdev.c"
OLD_HANDLER = """\
static int fieldsdev_mmap(struct file *file, struct vm_area_struct *vma)
{
\tstruct fieldsdev *fdev = file->private_data;

\tif (vma->vm_pgoff > FIELDSDEV_MAX_PGOFF)
\t\treturn -EINVAL;

\tif (vma->vm_end - vma->vm_start > fdev->size)
\t\treturn -EINVAL;

\tvma->vm_ops = &fieldsdev_vm_ops;
\tvma->vm_private_data = fdev;
\tvm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
\t/* The status area is updated by the device behind the CPU's back. */
\tvma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
\treturn 0;
}
"""
# The conversion to the sample tree's hook (G1, .mmap_proto), as a
# maintainer would send it.
NEW_HANDLER = """\
static int fieldsdev_mmap_proto(struct vma_proto *desc)
{
\tstruct fieldsdev *fdev = desc->file->private_data;

\tif (desc->pgoff > FIELDSDEV_MAX_PGOFF)
\t\treturn -EINVAL;

\tif (desc->end - desc->start > fdev->size)
\t\treturn -EINVAL;

\tdesc->vm_ops = &fieldsdev_vm_ops;
\tdesc->private_data = fdev;
\tdesc->flags |= VM_DONTEXPAND | VM_DONTDUMP;
\t/* The status area is updated by the device behind the CPU's back. */
\tdesc->page_prot = pgprot_noncached(desc->page_prot);
\treturn 0;
}
"""
PROTO = "use .mmap_proto(struct vma_proto *) instead of .mmap"


@pytest.fixture
def dev(sample_tree, tmp_path) -> Path:
    """A developer's clone of the sample tree, where patches are made."""
    clone = tmp_path / "dev"
    git(tmp_path, "clone", "--quiet", str(sample_tree), str(clone))
    git(clone, "config", "user.name", "A Developer")
    git(clone, "config", "user.email", "dev@example.invalid")
    return clone


def edit(tree: Path, path: str, old: str, new: str) -> None:
    text = (tree / path).read_text()
    assert old in text, (path, old)
    (tree / path).write_text(text.replace(old, new, 1))


def commit_patch(dev: Path, out: Path, subject: str) -> Path:
    """Commit what is in `dev` and write it with git format-patch."""
    git(dev, "add", "-A")
    git(dev, "commit", "--quiet", "-m", subject)
    name = git(dev, "format-patch", "-1", "-o", str(out)).strip()
    return Path(name)


def check(tree: Path, *patches: Path, extra=()) -> tuple[int, list[str], str]:
    r = run_mmconvert("check", *patches, "--tree", tree, *extra)
    assert "Traceback" not in r.stderr
    return r.returncode, r.stdout.splitlines(), r.stderr


def test_a_new_driver_with_mmap_is_flagged_at_its_line(sample_tree, dev, tmp_path):
    (dev / "drivers/char/newdev.c").write_text(NEWDEV)
    patch = commit_patch(dev, tmp_path / "out", "char: add newdev")
    before = tree_state(sample_tree)
    status, out, err = check(sample_tree, patch)
    assert status == 1, err
    # One flag: the .mmap = NULL beside it sets no handler.
    assert out == [
        f"{patch}: drivers/char/newdev.c:24: WARNING: newdev_fops sets .mmap = newdev_mmap "
        f"(fields: drivers/char/newdev.c:15: vma->vm_pgoff): {PROTO}: the handler only does "
        "what the descriptor can express"]
    assert tree_state(sample_tree) == before
    assert not git(sample_tree, "worktree", "list", "--porcelain").count("\nworktree ")


def test_the_tree_defaults_to_the_current_directory(sample_tree, dev, tmp_path):
    (dev / "drivers/char/newdev.c").write_text(NEWDEV)
    patch = commit_patch(dev, tmp_path / "out", "char: add newdev")
    r = run_mmconvert("check", patch, cwd=sample_tree)
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 1, r.stderr


def test_json_gives_one_record_per_flag(sample_tree, dev, tmp_path):
    (dev / "drivers/char/newdev.c").write_text(NEWDEV)
    patch = commit_patch(dev, tmp_path / "out", "char: add newdev")
    status, out, err = check(sample_tree, patch, extra=("--json",))
    assert status == 1, err
    records = json.loads("\n".join(out))
    assert records == [{
        "patch": str(patch), "file": "drivers/char/newdev.c", "line": 24, "kind": "entry",
        "fops": "newdev_fops", "handler": "newdev_mmap",
        "entry": {"file": "drivers/char/newdev.c", "line": 24,
                  "expression": ".mmap = newdev_mmap"},
        "class": "fields",
        "reason": {"file": "drivers/char/newdev.c", "line": 15, "expression": "vma->vm_pgoff"},
        "notes": [], "hook": ".mmap_proto",
        "suggestion": f"{PROTO}: the handler only does what the descriptor can express"}]


def test_json_of_a_clean_patch_is_an_empty_list(sample_tree, dev, tmp_path):
    edit(dev, FIELDSDEV, "\t\treturn -EINVAL;\n\n\tif (vma->vm_end", "\t\treturn -ENXIO;\n\n"
                                                                   "\tif (vma->vm_end")
    patch = commit_patch(dev, tmp_path / "out", "char: fieldsdev: -ENXIO for a bad offset")
    status, out, err = check(sample_tree, patch, extra=("--json",))
    assert (status, json.loads("\n".join(out))) == (0, []), err


def test_a_change_to_an_existing_handlers_body_is_not_flagged(sample_tree, dev, tmp_path):
    edit(dev, FIELDSDEV, "\t\treturn -EINVAL;\n\n\tif (vma->vm_end", "\t\treturn -ENXIO;\n\n"
                                                                   "\tif (vma->vm_end")
    patch = commit_patch(dev, tmp_path / "out", "char: fieldsdev: -ENXIO for a bad offset")
    assert check(sample_tree, patch)[:2] == (0, [])


def test_a_conversion_to_the_new_hook_is_not_flagged(sample_tree, dev, tmp_path):
    edit(dev, FIELDSDEV, OLD_HANDLER, NEW_HANDLER)
    edit(dev, FIELDSDEV, "\t.mmap\t\t= fieldsdev_mmap,", "\t.mmap_proto\t= fieldsdev_mmap_proto,")
    patch = commit_patch(dev, tmp_path / "out", "char: fieldsdev: convert to .mmap_proto")
    assert "+\t.mmap_proto\t= fieldsdev_mmap_proto," in patch.read_text()
    assert check(sample_tree, patch)[:2] == (0, [])


def test_realigning_an_existing_fops_is_not_a_new_user(sample_tree, dev, tmp_path):
    edit(dev, FIELDSDEV, "\t.mmap\t\t= fieldsdev_mmap,", "\t.mmap = fieldsdev_mmap,")
    patch = commit_patch(dev, tmp_path / "out", "char: fieldsdev: one space")
    assert "+\t.mmap = fieldsdev_mmap," in patch.read_text()
    assert check(sample_tree, patch)[:2] == (0, [])


def test_a_new_handler_for_an_existing_entry_is_flagged_at_its_definition(sample_tree, dev,
                                                                          tmp_path):
    """Patches apply in order: the second gives the first one's fops a
    handler of its own, and is flagged where it adds it."""
    (dev / "drivers/char/aliasdev.c").write_text(
        "#include <linux/fs.h>\n\n#define aliasdev_mmap generic_file_mmap\n\n"
        "static const struct file_operations aliasdev_fops = {\n"
        "\t.mmap\t\t= aliasdev_mmap,\n};\n")
    first = commit_patch(dev, tmp_path / "out", "char: add aliasdev")
    edit(dev, "drivers/char/aliasdev.c", "#define aliasdev_mmap generic_file_mmap\n",
         "static int aliasdev_mmap(struct file *file, struct vm_area_struct *vma)\n{\n"
         "\treturn vm_insert_page(vma, vma->vm_start, NULL);\n}\n")
    second = commit_patch(dev, tmp_path / "out", "char: aliasdev: map a page")
    status, out, err = check(sample_tree, first, second)
    assert status == 1, err
    assert out == [
        f"{first}: drivers/char/aliasdev.c:6: WARNING: aliasdev_fops sets .mmap = "
        f"aliasdev_mmap (unclear, no definition with (struct file *, struct vm_area_struct *) "
        f"found: drivers/char/aliasdev.c:6: .mmap = aliasdev_mmap): {PROTO}",
        f"{second}: drivers/char/aliasdev.c:3: WARNING: new .mmap handler aliasdev_mmap, used "
        f"by aliasdev_fops at drivers/char/aliasdev.c:9 (needs-vma, passes the vma to "
        f"vm_insert_page(): drivers/char/aliasdev.c:5: vm_insert_page(vma, vma->vm_start, "
        f"NULL)): {PROTO} where the descriptor can express it; this handler needs the VMA"]


def test_an_mbox_of_several_patches_is_checked_one_patch_at_a_time(sample_tree, dev, tmp_path):
    """`git format-patch --stdout`: each message is applied and judged on
    its own, with the lines of the file as that patch leaves it."""
    (dev / "drivers/char/newdev.c").write_text(NEWDEV)
    git(dev, "add", "-A")
    git(dev, "commit", "--quiet", "-m", "char: add newdev")
    edit(dev, "drivers/char/newdev.c", "#include <linux/errno.h>\n",
         "/*\n * Maps one status page.\n */\n#include <linux/errno.h>\n")
    git(dev, "commit", "--quiet", "-am", "char: newdev: say what it maps")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(dev, "format-patch", "--stdout", "origin/master"))
    status, out, err = check(sample_tree, mbox)
    assert status == 1, err
    assert [line.split(" WARNING: ")[0] for line in out] == [
        f"{mbox} (1/2): drivers/char/newdev.c:24:"]


def test_a_patch_that_does_not_apply_is_one_line_and_changes_nothing(sample_tree, dev,
                                                                     tmp_path):
    edit(dev, FIELDSDEV, "\t\treturn -EINVAL;\n\n\tif (vma->vm_end", "\t\treturn -ENXIO;\n\n"
                                                                   "\tif (vma->vm_end")
    patch = commit_patch(dev, tmp_path / "out", "char: fieldsdev: -ENXIO for a bad offset")
    # The user's tree moved on: the line the patch changes is not there.
    edit(sample_tree, FIELDSDEV, "\tif (vma->vm_pgoff > FIELDSDEV_MAX_PGOFF)",
         "\tif (vma->vm_pgoff >= FIELDSDEV_NR_PAGES)")
    git(sample_tree, "commit", "--quiet", "-am", "char: fieldsdev: bound by the page count")
    before = tree_state(sample_tree)
    status, out, err = check(sample_tree, patch)
    assert status == 2 and out == []
    head = git(sample_tree, "rev-parse", "--short=12", "HEAD").strip()
    assert err.splitlines() == [f"mmconvert: {patch}: does not apply to {sample_tree} at {head}: "
                                f"{FIELDSDEV}: the hunk at line 57 does not apply"]
    assert tree_state(sample_tree) == before


@pytest.mark.parametrize("content,needle", [
    (None, "cannot read the patch"),
    ("hello\n", "no diff in it"),
])
def test_an_unreadable_patch_is_one_line(sample_tree, tmp_path, content, needle):
    patch = tmp_path / "some.patch"
    if content is not None:
        patch.write_text(content)
    status, out, err = check(sample_tree, patch)
    assert status == 2 and out == [] and len(err.splitlines()) == 1 and needle in err, err


# -- Debian's 7.3 -------------------------------------------------------------

NEWPG = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

static struct page *newpg_page;

static int newpg_mmap(struct file *file, struct vm_area_struct *vma)
{
\treturn vm_insert_page(vma, vma->vm_start, newpg_page);
}

static const struct file_operations newpg_fops = {
\t.owner\t= THIS_MODULE,
\t.mmap\t= newpg_mmap,
};

static struct miscdevice newpg_misc = {
\t.minor\t= MISC_DYNAMIC_MINOR,
\t.name\t= "newpg",
\t.fops\t= &newpg_fops,
};
module_misc_device(newpg_misc);
MODULE_LICENSE("GPL");
"""
NEWFS = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>

const struct file_operations newfs_file_operations = {
\t.read_iter\t= generic_file_read_iter,
\t.mmap\t\t= generic_file_mmap,
\t.llseek\t\t= generic_file_llseek,
};
"""


@pytest.mark.realtree
def test_check_on_73_flags_new_users_with_the_class_scan_gives(kernel_tree, tmp_path):
    import time

    tree = kernel_tree("7.3")
    (tree / "drivers/misc/newpg").mkdir()
    (tree / "drivers/misc/newpg/newpg.c").write_text(NEWPG)
    (tree / "fs/newfs").mkdir()
    (tree / "fs/newfs/file.c").write_text(NEWFS)
    new = commit_patch(tree, tmp_path / "out", "misc: add newpg; fs: add newfs")
    edit(tree, "fs/udf/file.c", "\tfile_accessed(file);\n\tvma->vm_ops = &udf_file_vm_ops;",
         "\tfile_accessed(file);\n\t/* Faults go through the page cache. */\n"
         "\tvma->vm_ops = &udf_file_vm_ops;")
    body = commit_patch(tree, tmp_path / "out", "udf: say where faults go")
    git(tree, "reset", "--quiet", "--hard", "base")
    before = tree_state(tree)
    start = time.monotonic()
    status, out, err = check(tree, new, body)
    print(f"\n7.3: mmconvert check of 2 patches: {time.monotonic() - start:.1f} s")
    assert status == 1, err
    assert out == [
        f"{new}: drivers/misc/newpg/newpg.c:16: WARNING: newpg_fops sets .mmap = newpg_mmap "
        "(needs-vma, passes the vma to vm_insert_page(): drivers/misc/newpg/newpg.c:11: "
        "vm_insert_page(vma, vma->vm_start, newpg_page)): use .mmap_prepare(struct "
        "vm_area_desc *) instead of .mmap where the descriptor can express it; this handler "
        "needs the VMA",
        f"{new}: fs/newfs/file.c:6: WARNING: newfs_file_operations sets .mmap = "
        "generic_file_mmap (library, shared helper: exported: mm/filemap.c:4047: "
        "vma->vm_ops): use .mmap_prepare = generic_file_mmap_prepare instead"]
    assert tree_state(tree) == before
