"""Intake and output: submissions holding links or special files are refused, and nbgrader's own
file operations on students' files never follow a link.

`problems(folder)` names every symbolic link, hard link (a regular file with more than one
name), device, FIFO and socket in a submission. `install()` (called from `nbgrader_config.py`,
so by every nbgrader command) patches nbgrader 0.9:

* `nbgrader autograde` and `nbgrader generate_feedback` refuse a student whose input folder has
  problems before touching it: one log line per problem
  (`student S: assignment A: submission refused: data.csv is a symbolic link`), an error for
  that student alone (nbgrader grades the others and exits with status 1 at the end);
* `nbgrader collect` (exchange) skips such a submission with the same log line;
* the copies of the student's files (`init_assignment`, collect's `do_copy`), the instructor's
  files copied into `autograded/` (`Autograde.init_assignment`), the written notebooks and
  feedback pages (`write_single_notebook`) and the chmods (`set_permissions`) open every folder
  below `submitted/`, `autograded/` and `feedback/` (which the instructor may link elsewhere)
  with O_NOFOLLOW, one component at a time from a directory fd, write new files with
  O_CREAT|O_EXCL|O_NOFOLLOW after removing whatever had the name, and copy or chmod regular
  files with a single name only.

Imports only the standard library (nbgrader inside `install`): nbgrader_config.py runs it.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC   # O_NONBLOCK: a FIFO never blocks
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
_LOOP = (errno.ELOOP, errno.EMLINK)  # what O_NOFOLLOW gives on a link (Linux, macOS / BSD)
MAX_LOGGED = 20  # problems logged per submission


class IntakeError(Exception):
    """A link or special file where nbgrader was about to copy, write or chmod."""


def kind(st: os.stat_result) -> str | None:
    """What is wrong with an entry of this (lstat) status, or None for a folder or plain file."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        return f"a hard link ({st.st_nlink} names for one file)" if st.st_nlink > 1 else None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "neither a regular file nor a folder"


def _open_subdir(parent_fd: int, name: str, shown: str) -> int:
    try:
        return os.open(name, _DIR, dir_fd=parent_fd)
    except OSError as error:  # Linux says ENOTDIR for a link with O_DIRECTORY, others ELOOP
        if error.errno not in (*_LOOP, errno.ENOTDIR):
            raise
        try:
            what = kind(os.stat(name, dir_fd=parent_fd, follow_symlinks=False))
        except OSError:
            what = None
        raise IntakeError(f"{shown} is {what if what == 'a symbolic link' else 'not a folder'}") from None


def _entries(dir_fd: int, prefix: str = "") -> Iterator[tuple[int, str, str, os.stat_result]]:
    """(folder fd, name, relative path, lstat) of everything below `dir_fd`, sorted, depth first.
    Only real folders are entered (opened with O_NOFOLLOW)."""
    with os.scandir(dir_fd) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        rel = prefix + entry.name
        yield dir_fd, entry.name, rel, st
        if stat.S_ISDIR(st.st_mode):
            sub = _open_subdir(dir_fd, entry.name, rel)
            try:
                yield from _entries(sub, rel + "/")
            finally:
                os.close(sub)


def problems(folder: str | os.PathLike[str], *, parent: bool = True) -> list[str]:
    """Every symbolic link, hard link, device, FIFO or socket in `folder` ("data/x.csv is a
    symbolic link"), found with lstat only; also `folder` itself (and, with `parent`, the folder
    holding it: submitted/<student>) being a link or not a folder. Empty: nothing to refuse."""
    folder = os.path.abspath(os.fspath(folder))
    checks = [(folder, "the submission folder itself")]
    if parent:
        checks.insert(0, (os.path.dirname(folder), f"the folder holding it ({os.path.basename(os.path.dirname(folder))})"))
    for path, shown in checks:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return [f"{shown} is a symbolic link"]
        if not stat.S_ISDIR(st.st_mode):
            return [f"{shown} is not a folder"]
    found = []
    try:
        top = _open_dir_plain(folder)
        try:
            for _, _, rel, st in _entries(top):
                what = kind(st)
                if what:
                    found.append(f"{rel} is {what}")
        finally:
            os.close(top)
    except IntakeError as error:  # changed while it was read
        found.append(str(error))
    return found


def _open_dir_plain(folder: str) -> int:
    """`folder`, its last component not followed."""
    try:
        return os.open(folder, _DIR)
    except OSError as error:
        if error.errno in (*_LOOP, errno.ENOTDIR) and os.path.islink(folder):
            raise IntakeError("the submission folder itself is a symbolic link") from None
        raise


# --- Opening, writing, copying and chmodding without following links ----------------------------

def open_dir(path: str, base: str, *, create: bool = False) -> int:
    """A descriptor of folder `path`, opened component by component below `base` (trusted: it
    may be a link) with O_NOFOLLOW; missing folders are created when `create`."""
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(base))
    parts = [] if rel == os.curdir else rel.split(os.sep)
    if os.pardir in parts:
        raise IntakeError(f"{path} is not inside {base}")
    if create:
        os.makedirs(base, exist_ok=True)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for index, part in enumerate(parts):
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            sub = _open_subdir(fd, part, os.path.join(base, *parts[:index + 1]))
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file(dir_fd: int, name: str, content: bytes | BinaryIO, mode: int | None = None) -> None:
    """Write `content` to a new file `name` in `dir_fd`. Whatever had the name (a link, say) is
    removed first, never written through; `mode` (default: 0666 less the umask) is set exactly."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(name, _CREATE, 0o666 if mode is None else 0o600, dir_fd=dir_fd)
    with open(fd, "wb") as out:
        if isinstance(content, (bytes, bytearray)):
            out.write(content)
        else:
            shutil.copyfileobj(content, out, 1 << 20)
        if mode is not None:
            os.fchmod(out.fileno(), mode)


def write_below(dir_fd: int, rel: str, content: bytes) -> None:
    """`write_file` for a relative path such as "nb_files/output_1.png" (folders created, never followed)."""
    *folders, name = rel.replace(os.sep, "/").split("/")
    if rel.startswith("/") or os.pardir in folders or name in ("", os.curdir, os.pardir):
        raise IntakeError(f"{rel} is not a plain relative file name")
    fd = os.dup(dir_fd)
    try:
        for folder in folders:
            if folder in ("", os.curdir):
                continue
            try:
                os.mkdir(folder, dir_fd=fd)
            except FileExistsError:
                pass
            sub = _open_subdir(fd, folder, folder)
            os.close(fd)
            fd = sub
        write_file(fd, name, content)
    finally:
        os.close(fd)


def copy_file(src_dir: int, name: str, dst_dir: int, rel: str, expected: os.stat_result | None = None) -> None:
    """Copy `name` (a regular file with one name, not followed) from `src_dir` to `dst_dir`,
    with its permission bits (less setuid, setgid and sticky), as shutil.copy does."""
    try:
        src = os.open(name, _READ, dir_fd=src_dir)
    except OSError as error:
        if error.errno in _LOOP:
            raise IntakeError(f"{rel} is a symbolic link") from None
        raise
    with open(src, "rb") as source:
        st = os.fstat(src)
        what = kind(st) or (None if stat.S_ISREG(st.st_mode) else "a folder")
        if what is None and expected is not None and (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            what = "a file that was replaced while it was copied"
        if what:
            raise IntakeError(f"{rel} is {what}")
        write_file(dst_dir, name, source, mode=stat.S_IMODE(st.st_mode) & 0o777)


def copy_tree(src_fd: int, dst_fd: int, skip: Callable[[str, str, os.stat_result], bool],
              on_copy: Callable[[str], None] = lambda rel: None, prefix: str = "") -> None:
    """Copy the folders and regular files below `src_fd` into `dst_fd` (folders created as
    needed), leaving out what `skip(name, rel, lstat)` says; IntakeError at anything else."""
    with os.scandir(src_fd) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        rel = prefix + entry.name
        if skip(entry.name, rel, st):
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                os.mkdir(entry.name, dir_fd=dst_fd)
            except FileExistsError:
                pass
            sub_src = _open_subdir(src_fd, entry.name, rel)
            try:
                sub_dst = _open_subdir(dst_fd, entry.name, rel + " (in the destination)")
                try:
                    copy_tree(sub_src, sub_dst, skip, on_copy, rel + "/")
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif kind(st) is None:
            on_copy(rel)
            copy_file(src_fd, entry.name, dst_fd, rel, expected=st)
        else:
            raise IntakeError(f"{rel} is {kind(st)}")


def chmod_file(dir_fd: int, name: str, mode: int) -> str | None:
    """chmod `name` in `dir_fd` if it is a regular file with one name, never through a link;
    otherwise change nothing and return what it is."""
    if hasattr(os, "O_PATH"):  # Linux: chmod the opened inode through /proc, whatever its mode
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
        try:
            what = kind(os.fstat(fd))
            if what is None:
                os.chmod(f"/proc/self/fd/{fd}", mode)
            return what
        finally:
            os.close(fd)
    what = kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
    if what is None:
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)  # lchmod (macOS, BSD)
    return what


# --- nbgrader --------------------------------------------------------------------------------------

def _step_folder(coursedir: Any, step: str) -> str:
    """submitted/, autograded/, ... : the part of CourseDirectory.directory_structure before the
    student and assignment ids. It is trusted (the instructor may link it elsewhere); nothing
    below it is followed."""
    from nbgrader.utils import full_split

    parts = []
    for part in full_split(coursedir.directory_structure):
        if "{student_id}" in part or "{assignment_id}" in part:
            break
        parts.append(part.format(nbgrader_step=step))
    return os.path.normpath(os.path.join(coursedir.root, *parts))


def _glob_ignored(name: str, globs: list[str]) -> bool:
    """nbgrader.utils.is_ignored without globbing the disk (glob's `*` skips dot files)."""
    return any(fnmatch.fnmatch(name, pattern) and (not name.startswith(".") or pattern.startswith("."))
               for pattern in globs)


def _log_refusal(log: Any, student: str, assignment: str, what: str, found: list[str]) -> None:
    for problem in found[:MAX_LOGGED]:
        log.error("student %s: assignment %s: %s refused: %s", student, assignment, what, problem)
    if len(found) > MAX_LOGGED:
        log.error("student %s: assignment %s: %s refused: ... and %d more", student, assignment, what,
                  len(found) - MAX_LOGGED)


def _what(converter: Any) -> str:
    from nbgrader.converters import Autograde

    return "submission" if isinstance(converter, Autograde) else "feedback"


def _checked_init_destination(original: Callable[..., bool]) -> Callable[..., bool]:
    def init_destination(self: Any, assignment_id: str, student_id: str) -> bool:
        """Refuse a student whose input folder holds links or special files, before nbgrader reads it."""
        excluded = self.coursedir.student_id_exclude.split(",") if self.coursedir.student_id_exclude else []
        if student_id not in excluded:
            found = problems(self._format_source(assignment_id, student_id))
            if found:
                _log_refusal(self.log, student_id, assignment_id, _what(self), found)
                raise IntakeError(f"student {student_id}: assignment {assignment_id}: {_what(self)} refused: "
                                  + "; ".join(found[:MAX_LOGGED]))
        return original(self, assignment_id, student_id)
    return init_destination


def _copy_input_files(self: Any, assignment_id: str, student_id: str) -> None:
    """BaseConverter.init_assignment for Autograde and GenerateFeedback: copy the files that are
    not notebooks from the student's folder into the output folder, links never followed."""
    source = self._format_source(assignment_id, student_id)
    dest = self._format_dest(assignment_id, student_id)
    ignore = list(self.coursedir.ignore) + ["*.ipynb"]
    try:
        src_fd = open_dir(source, _step_folder(self.coursedir, self._input_directory))
        try:
            dst_fd = open_dir(dest, _step_folder(self.coursedir, self._output_directory), create=True)
            try:
                copy_tree(src_fd, dst_fd, skip=lambda name, rel, st: _glob_ignored(name, ignore),
                          on_copy=lambda rel: self.log.info("Copying %s -> %s", os.path.join(source, rel),
                                                            os.path.join(dest, rel)))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
    except IntakeError as error:
        _log_refusal(self.log, student_id, assignment_id, _what(self), [str(error)])
        raise


_grading = threading.local()  # .converter: the Autograde whose init_assignment is running


class _NoFollowShutil:
    """Stands in for `shutil` in nbgrader.converters.autograde. Its one use there, shutil.copy in
    Autograde.init_assignment, copies the instructor's files (source/, trusted) into the
    student's autograded folder: the destination is written without following links."""

    def copy(self, src: str, dst: str) -> str:
        converter = getattr(_grading, "converter", None)
        if converter is None:  # not called from Autograde.init_assignment
            return shutil.copy(src, dst)
        coursedir = converter.coursedir
        folder = open_dir(os.path.dirname(dst), _step_folder(coursedir, coursedir.autograded_directory), create=True)
        try:
            with open(src, "rb") as source:
                mode = stat.S_IMODE(os.fstat(source.fileno()).st_mode) & 0o777
                write_file(folder, os.path.basename(dst), source, mode=mode)
        finally:
            os.close(folder)
        return dst

    def __getattr__(self, name: str) -> Any:
        return getattr(shutil, name)


def _nofollow_autograde_init_assignment(original: Callable[..., None]) -> Callable[..., None]:
    def init_assignment(self: Any, assignment_id: str, student_id: str) -> None:
        outer, _grading.converter = getattr(_grading, "converter", None), self
        try:
            original(self, assignment_id, student_id)
        finally:
            _grading.converter = outer
    return init_assignment


def _write_single_notebook(self: Any, output: str | bytes, resources: dict[str, Any]) -> None:
    """BaseConverter.write_single_notebook (nbconvert's FilesWriter) without following links:
    the extracted outputs and attachments, then the converted notebook."""
    assignment, student = resources["nbgrader"]["assignment"], resources["nbgrader"]["student"]
    dest = self._format_dest(assignment, student)
    if self.writer.files:
        self.log.warning("FilesWriter.files is not copied for student folders: %s", self.writer.files)
    name = resources["unique_key"] + (resources.get("output_extension") or "")
    try:
        fd = open_dir(dest, _step_folder(self.coursedir, self._output_directory), create=True)
        try:
            for key in ("outputs", "attachments"):
                for filename, data in (resources.get(key) or {}).items():
                    write_below(fd, filename, data)
            self.log.info("Writing %i bytes to %s", len(output), os.path.join(dest, name))
            write_file(fd, name, output.encode("utf-8") if isinstance(output, str) else output)
        finally:
            os.close(fd)
    except IntakeError as error:
        _log_refusal(self.log, student, assignment, _what(self), [str(error)])
        raise
    self.writer.build_directory = dest  # Autograde reads the notebook back from there


def _share_folder(fd: int, path: str, log: Any) -> None:
    """Add ug+rwx and setgid to a folder of a groupshared course, as nbgrader does."""
    mode = os.fstat(fd).st_mode
    if mode & 0o2770 != 0o2770:
        try:
            os.fchmod(fd, (mode | 0o2770) & 0o2777)
        except PermissionError:
            log.warning("Could not update permissions of %s to make it groupshared", path)


def _set_permissions(self: Any, assignment_id: str, student_id: str) -> None:
    """BaseConverter.set_permissions without following links: regular files with one name get
    the mode; anything else is left alone with a warning."""
    self.log.info("Setting destination file permissions to %s", self.permissions)
    dest = os.path.normpath(self._format_dest(assignment_id, student_id))
    permissions = int(str(self.permissions), 8)
    groupshared = self.coursedir.groupshared

    top = open_dir(dest, _step_folder(self.coursedir, self._output_directory))
    try:
        if groupshared:
            _share_folder(top, dest, self.log)
        for dir_fd, name, rel, st in _entries(top):
            path = os.path.join(dest, rel)
            if stat.S_ISDIR(st.st_mode):
                if groupshared:
                    sub = _open_subdir(dir_fd, name, path)
                    try:
                        _share_folder(sub, path, self.log)
                    finally:
                        os.close(sub)
                continue
            what = chmod_file(dir_fd, name, permissions)
            if what:
                self.log.warning("student %s: assignment %s: permissions of %s left alone: it is %s",
                                 student_id, assignment_id, path, what)
    finally:
        os.close(top)
    if groupshared:  # the step folder itself (trusted), as nbgrader does
        rootdir = self.coursedir.format_path(self._output_directory, ".", ".")
        mode = os.stat(rootdir).st_mode
        if mode & 0o2770 != 0o2770:
            try:
                os.chmod(rootdir, (mode | 0o2770) & 0o2777)
            except PermissionError:
                self.log.warning("Could not update permissions of %s to make it groupshared", rootdir)


def _checked_collect_init_src(original: Callable[..., None]) -> Callable[..., None]:
    def init_src(self: Any) -> None:
        """ExchangeCollect.init_src, then drop (with a log line) the submissions with problems."""
        original(self)
        kept = []
        for record in self.src_records:
            student = record["username"]
            path = os.path.join(self.inbound_path, record["filename"])
            found = ([f"{record['filename']} does not name a student"] if student in ("", ".", "..")
                     else problems(path, parent=False))
            if found:
                _log_refusal(self.log, student, self.coursedir.assignment_id, "submission", found)
            else:
                kept.append(record)
        self.src_records = kept
    return init_src


def _collect_do_copy(self: Any, src: str, dest: str, log: Any = None) -> None:
    """Exchange.do_copy for ExchangeCollect: nbgrader's size limit and ignore/include/max_file_size
    rules, but the student-writable inbound folder is read without following links, and a
    submission that turns out to hold a link or special file is skipped with a log line."""
    max_dir_size = self.coursedir.max_dir_size
    dir_size = self.get_size(src)
    if dir_size > 1000 * max_dir_size:
        self.log.error("Directory size is too big")
        raise RuntimeError(f"Directory size is too big. Size is {dir_size}, maximum size is {1000 * max_dir_size}")
    exclude, include = self.coursedir.ignore, self.coursedir.include
    max_file_size = self.coursedir.max_file_size

    def skip(name: str, rel: str, st: os.stat_result) -> bool:
        if exclude and any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
            return True
        if stat.S_ISREG(st.st_mode):
            if include and not any(fnmatch.fnmatch(name, pattern) for pattern in include):
                return True
            if max_file_size and st.st_size > 1000 * max_file_size:
                self.log.warning("Ignoring file too large '%s' (see config option CourseDirectory.max_file_size)",
                                 os.path.join(src, rel))
                return True
        return False

    student, assignment = os.path.basename(os.path.dirname(dest)), os.path.basename(dest)
    created = False
    try:
        src_fd = _open_dir_plain(src)
        try:
            parent = open_dir(os.path.dirname(dest), _step_folder(self.coursedir, self.coursedir.submitted_directory),
                              create=True)
            try:
                os.mkdir(assignment, dir_fd=parent)  # like copytree: it must not exist yet
                created = True
                dst_fd = _open_subdir(parent, assignment, dest)
            finally:
                os.close(parent)
            try:
                copy_tree(src_fd, dst_fd, skip)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
    except IntakeError as error:
        _log_refusal(self.log, student, assignment, "submission", [str(error)])
        if created:
            shutil.rmtree(dest)  # the partial copy (rmtree does not follow links)
        return
    if self.coursedir.groupshared:  # copytree kept the modes: add ug+rw(x) back, as nbgrader does
        fd = open_dir(dest, _step_folder(self.coursedir, self.coursedir.submitted_directory))
        try:
            _share_folder(fd, dest, self.log)
            for dir_fd, name, rel, st in _entries(fd):
                path = os.path.join(dest, rel)
                if stat.S_ISDIR(st.st_mode):
                    sub = _open_subdir(dir_fd, name, path)
                    try:
                        _share_folder(sub, path, self.log)
                    finally:
                        os.close(sub)
                elif st.st_mode & 0o660 != 0o660:
                    try:
                        chmod_file(dir_fd, name, (st.st_mode | 0o660) & 0o777)
                    except PermissionError:
                        self.log.warning("Could not update permissions of %s to make it groupshared", path)
        finally:
            os.close(fd)


def install() -> None:
    """Patch nbgrader (idempotent; cheap: nbgrader's apps have imported these modules already)."""
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.converters import autograde as autograde_module
    from nbgrader.converters.base import BaseConverter
    from nbgrader.exchange.default.collect import ExchangeCollect

    if getattr(BaseConverter, "_course_intake", False):
        return
    student_converters = (Autograde, GenerateFeedback)
    base_init_assignment = BaseConverter.init_assignment

    def init_assignment(self: Any, assignment_id: str, student_id: str) -> None:
        if isinstance(self, student_converters):
            _copy_input_files(self, assignment_id, student_id)
        else:  # generate_assignment & co. copy the instructor's own source/: unchanged
            base_init_assignment(self, assignment_id, student_id)

    BaseConverter.init_assignment = init_assignment
    autograde_module.shutil = _NoFollowShutil()  # type: ignore[assignment]
    Autograde.init_assignment = _nofollow_autograde_init_assignment(Autograde.init_assignment)
    for converter in student_converters:
        converter.init_destination = _checked_init_destination(converter.init_destination)
        converter.write_single_notebook = _write_single_notebook
        converter.set_permissions = _set_permissions
    ExchangeCollect.init_src = _checked_collect_init_src(ExchangeCollect.init_src)
    ExchangeCollect.do_copy = _collect_do_copy
    BaseConverter._course_intake = True
