"""A response of NCMEC's hash-sharing API (``GET /v2/entries``), saved as XML: the shape python-threatexchange's
NCMEC client parses.

    <queryResult xmlns="...">
      <images count=".." maxTimestamp="..">
        <image>
          <member id="42">..</member> <id>..</id> <classification>..</classification>
          <fingerprints> <md5>..</md5> <sha1>..</sha1> <pdna>..</pdna> </fingerprints>
        </image>
        <deletedImage> <member id=".."/> <id>..</id> </deletedImage>
      </images>
      <videos> <video>..</video> <deletedVideo>..</deletedVideo> </videos>
    </queryResult>

Every fingerprint becomes an entry with id ``<member id>-<id>`` (entry ids are per member, the way
python-threatexchange keys them), labels ``category`` (the classification), ``member`` and ``media``.
``md5``, ``sha1``, ``sha256`` and ``pdq`` are read; ``pdna`` (PhotoDNA) and video fingerprints are counted and
reported. A deleted entry removes an earlier entry of the same id in the file, and a later entry of an id
replaces an earlier one: the file is a stream of updates, and the bank is its end state. A DOCTYPE is refused,
so no entity is ever expanded.

The parser is expat driven directly, so every error can name the line of the element it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._options import Format, unsupported_signal
from cleanset.banks.formats.rows import RowMaker, shown_name
from cleanset.errors import InputFormatError

ENTRY_TAGS = {"image": ("image", False), "video": ("video", False), "deletedImage": ("image", True),
              "deletedVideo": ("video", True)}  # fmt: skip
GROUP_TAGS = {"images", "videos"}
READ = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "pdq": "pdq"}
HEAD_MARKERS = (b"queryResult", b"hashsharing")


@dataclass
class _Entry:
    tag: str
    media: str
    deleted: bool
    line: int
    number: int  # position among the file's entries, from 1
    id: str | None = None
    member: str | None = None
    classification: str | None = None
    fingerprints: list[tuple[str, str, int]] = field(default_factory=list)  # (tag, text, line)

    @property
    def key(self) -> str | None:
        if self.id is None:
            return None
        return f"{self.member}-{self.id}" if self.member else self.id


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _local(tag: str) -> str:
    return tag.rsplit(" ", 1)[-1]


class _Collector:
    """Expat handlers that gather entries; text is kept only for the elements an entry needs."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.stack: list[str] = []
        self.entries: list[_Entry] = []
        self.entry: _Entry | None = None
        self.text: list[str] | None = None
        self.text_line = 0
        self.root: str | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name = _local(tag)
        line = self.parser.CurrentLineNumber
        parent = self.stack[-1] if self.stack else None
        if self.root is None:
            self.root = name
        if parent in GROUP_TAGS and name in ENTRY_TAGS:
            media, deleted = ENTRY_TAGS[name]
            self.entry = _Entry(name, media, deleted, line, len(self.entries) + 1)
        elif self.entry is not None:
            if parent == self.entry.tag and name == "member":
                self.entry.member = attrs.get("id")
            if (parent == self.entry.tag and name in ("id", "classification")) or parent == "fingerprints":
                self.text, self.text_line = [], line
        self.stack.append(name)

    def end(self, tag: str) -> None:
        name = self.stack.pop()
        entry = self.entry
        if entry is None:
            return
        parent = self.stack[-1] if self.stack else None
        if name == entry.tag and parent in GROUP_TAGS:
            self.entries.append(entry)
            self.entry = None
        elif self.text is not None:
            text = "".join(self.text).strip()
            if parent == "fingerprints":
                entry.fingerprints.append((name, text, self.text_line))
            elif name == "id":
                entry.id = text
            elif name == "classification":
                entry.classification = text or None
            self.text = None

    def chars(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def doctype(self, *_: object) -> None:
        raise _Refused("a DOCTYPE is not accepted (an NCMEC response has none)")


@FORMATS.register("ncmec")
class NcmecXml(Format):
    name = "ncmec"
    description = "NCMEC hash-sharing API XML (<queryResult> with <image>/<video> entries and fingerprints)"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return first_line(head).startswith("<") and any(m in head for m in HEAD_MARKERS)

    def _read(self, path: Path) -> list[_Entry]:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        collector = _Collector(parser)
        parser.StartElementHandler = collector.start
        parser.EndElementHandler = collector.end
        parser.CharacterDataHandler = collector.chars
        parser.StartDoctypeDeclHandler = collector.doctype
        parser.EntityDeclHandler = collector.doctype
        try:
            with path.open("rb") as f:
                parser.ParseFile(f)
        except expat.ExpatError as e:
            raise InputFormatError(str(path), f"malformed XML ({expat.ErrorString(e.code)})", e.lineno) from None
        except _Refused as e:
            raise InputFormatError(str(path), e.message, parser.CurrentLineNumber) from None
        if collector.root is None:
            raise InputFormatError(str(path), "the list is empty")
        if collector.root != "queryResult":
            raise InputFormatError(
                str(path), f"expected an NCMEC <queryResult> document, the root element is {shown_name(collector.root)}"
            )
        return collector.entries

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        current: dict[str, _Entry] = {}
        deleted = replaced = 0
        for entry in self._read(path):
            maker.where = f"<{entry.tag}> entry {entry.number}: "
            k = entry.key
            if k is None or not entry.id:
                maker.fail(entry.line, "no <id>")
                self.skipped = maker.skipped
                continue
            if entry.deleted:
                deleted += 1
                current.pop(k, None)
                continue
            if k in current:
                replaced += 1
                del current[k]  # re-inserted below, in the order of its latest update
            current[k] = entry
        for entry in current.values():
            maker.where = f"<{entry.tag}> entry {entry.number}: "
            labels = {"media": entry.media}
            if entry.classification:
                labels["category"] = entry.classification
            if entry.member:
                labels["member"] = entry.member
            if not entry.fingerprints:
                maker.fail(entry.line, "no <fingerprints>")
                self.skipped = maker.skipped
                continue
            for tag, text, line in entry.fingerprints:
                sig = READ.get(tag.lower())
                if sig is None:
                    self.unsupported[unsupported_signal(tag) or "other"] += 1
                    continue
                maker.where = f"<{entry.tag}> entry {entry.number}, <{tag}>: "
                row = maker.make(line, sig, text, entry.key, labels)
                self.skipped = maker.skipped
                if row is not None:
                    yield row
        maker.where = ""
        if deleted:
            self.extra_notes.append(f"{deleted:,} deleted entr{'ies' if deleted != 1 else 'y'} applied")
        if replaced:
            self.extra_notes.append(f"{replaced:,} entr{'ies' if replaced != 1 else 'y'} updated later in the file")
