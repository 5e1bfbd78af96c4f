"""File transfer (RFC 5547): a sans-I/O core and, in `trio/`, its I/O side. The stream kind
(push, pull, resume, `file.progress`) sits on these in sipd/sessions/streams/.

Core (no trio, no sockets):
  errors.py     FileAttributeError
  selector.py   a=file-selector: name (quoted, percent-encoded), type, size, hash; pull matching
  sdp.py        the other RFC 5547 attributes (transfer id, disposition, date, icon, range) and
                FileTransferMedia, the attributes of one m-line as (name, value) pairs
  naming.py     received names made safe for the download folder; ` (1)` for taken names; .part
  receiving.py  where incoming chunks go in the file (Byte-Range by message or by file), when it
                is whole, and the data that is refused (more than the selector's size)
  resume.py     kept parts, which file they are of, and the a=file-range still needed
  progress.py   file.progress at a bounded rate, with the transfer rate
Trio side:
  trio/hashing.py   a file's hash in a worker thread
  trio/receiver.py  an incoming file written to its .part, disk full, verified, renamed
  trio/sender.py    a range of a file as an MSRP message body read piece by piece
  trio/sharing.py   the file of files.share_dir an incoming pull's selector asks for
  trio/parts.py     the kept parts of cut transfers, on disk (for a resume after a restart)
"""
