"""Listing the images of a data source: an image folder or a CSV manifest.

Both produce :class:`Record` lists (path, class name, group name or ``None``, split or ``None``);
nothing here opens an image or writes anything. Accepted layouts:

* Grouped folder: ``ROOT/[<split>/]<group>/<class>/<image>``.
* Plain ImageFolder (no groups): ``ROOT/[<split>/]<class>/<image>``.
  ``<split>`` is ``train``, ``val`` or ``test`` (any subset; missing ones are made later). Which
  layout a folder uses is read from its sub-folders: folders holding images are classes, folders
  holding class folders are groups; one folder may not mix both. Names starting with ``.`` or
  ``__`` are ignored, and so are files whose suffix is not an image's (:data:`IMAGE_SUFFIXES`).
  An empty class folder is skipped; a group folder without any image is an error.
* CSV manifest with a header naming ``path,label`` and optionally ``group`` and ``split``;
  ``path`` is absolute or relative to the CSV's folder. With a ``split`` column every row needs
  one of ``train``, ``val``, ``test``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from evaluators.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
)
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label")
"""Columns every manifest needs; ``group`` and ``split`` are optional."""
_FOLDER_FIX = "lay the data out as ROOT/[train|val|test/][<group>/]<class>/<image>"


@dataclass(frozen=True)
class Record:
    """One image of a source.

    Attributes:
        path: Image file.
        label: Class name.
        group: Group name (e.g. skin tone), or ``None`` for data without groups.
        split: ``train``, ``val``, ``test``, or ``None`` when the source does not say.
    """

    path: Path
    label: str
    group: str | None
    split: str | None


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "__"))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _class_records(folder: Path, group: str | None, split: str | None) -> list[Record]:
    """Records of ``folder/<class>/<image>``."""
    return [
        Record(path=image, label=cls.name, group=group, split=split)
        for cls in _subfolders(folder)
        for image in _images(cls)
    ]


def _scan_level(folder: Path, split: str | None) -> list[Record]:
    """Records of ``folder/<group>/<class>/<image>`` or ``folder/<class>/<image>``."""
    children = _subfolders(folder)
    if not children:
        raise DataError(f"{folder} has no class or group folders", _FOLDER_FIX)
    classes = [c for c in children if _images(c)]
    if not classes:
        return _scan_groups(folder, children, split)
    nested = [c for c in children if _subfolders(c)]
    if nested:
        raise DataError(
            f"{folder} mixes class folders with images ({classes[0].name}) and folders of folders "
            f"({nested[0].name})", "use either ROOT/<group>/<class>/<image> or ROOT/<class>/<image> throughout",
        )
    return _class_records(folder, None, split)


def _scan_groups(folder: Path, groups: list[Path], split: str | None) -> list[Record]:
    """Records of ``folder/<group>/<class>/<image>``."""
    records: list[Record] = []
    for group in groups:
        found = _class_records(group, group.name, split)
        if not found:
            raise DataError(
                f"group folder {group} has no images in class sub-folders",
                f"add images as {group}/<class>/<image>, or remove the empty group folder",
            )
        records.extend(found)
    return records


def scan_folder(root: Path) -> list[Record]:
    """All images of a grouped folder or an ImageFolder, with their split when split folders are used.

    Raises:
        DataError: When the layout is not recognised, mixed, or a group folder has no images.
    """
    children = _subfolders(root)
    split_folders = [c for c in children if c.name in SPLITS]
    if not split_folders:
        return _scan_level(root, split=None)
    others = [c.name for c in children if c.name not in SPLITS]
    if others:
        raise DataError(
            f"{root} mixes split folders ({', '.join(c.name for c in split_folders)}) with other "
            f"folders ({', '.join(others)})",
            "put every group folder inside train/, val/ or test/, or use no split folders at all",
        )
    records = [record for folder in split_folders for record in _scan_level(folder, split=folder.name)]
    if len({r.group is None for r in records}) > 1:
        raise DataError(f"{root} has split folders with groups and split folders without",
                        "use the same layout inside train/, val/ and test/")
    return records


def read_manifest(manifest: Path) -> list[Record]:
    """All rows of a CSV manifest as records.

    Raises:
        DataError: For missing columns, empty fields, unknown split names, files that do not
            exist, or a manifest without rows.
    """
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in MANIFEST_COLUMNS if c not in columns]
            if missing:
                raise DataError(
                    f"CSV manifest {manifest} lacks column(s) {', '.join(missing)} "
                    f"(found: {', '.join(columns) or 'no header'})",
                    "give it a header line path,label[,group][,split]",
                )
            reader.fieldnames = columns
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV manifest {manifest}: {exc}", "check the file") from exc
    has_split = "split" in columns
    has_group = "group" in columns
    records = [_manifest_record(manifest, line, row, has_split, has_group) for line, row in enumerate(rows, start=2)]
    if not records:
        raise DataError(f"CSV manifest {manifest} has no rows", "add one line per image: path,label[,group]")
    return records


def _manifest_record(manifest: Path, line: int, row: dict[str, str | None], has_split: bool,
                     has_group: bool) -> Record:
    """One manifest row as a record (``line`` is the 1-based line number, for messages)."""
    values = {key: (value or "").strip() for key, value in row.items() if key is not None}
    required = (*MANIFEST_COLUMNS, "group") if has_group else MANIFEST_COLUMNS
    empty = [c for c in required if not values.get(c)]
    if empty:
        raise DataError(f"{manifest} line {line}: empty {', '.join(empty)}", "fill in every column")
    path = Path(values["path"]).expanduser()
    if not path.is_absolute():
        path = manifest.parent / path
    if not path.is_file():
        raise DataError(
            f"{manifest} line {line} names {path}, which does not exist",
            "fix the path (relative paths are relative to the CSV's folder) or remove the row",
        )
    split: str | None = None
    if has_split:
        split = values.get("split", "").lower()
        if split not in SPLITS:
            raise DataError(
                f"{manifest} line {line}: split {values.get('split', '')!r} is not one of {', '.join(SPLITS)}",
                "use train, val or test in every row, or drop the split column to have splits made",
            )
    return Record(path=path, label=values["label"], group=values["group"] if has_group else None, split=split)
