"""Signature validation per ETSI EN 319 102-1.

One report model (:mod:`.model`) shared by per-format validators (``pades``, ``cades``,
``xades``, ``asic``), as EU DSS splits one validation model across per-format modules.
:mod:`.engine` detects what a file is and dispatches; :mod:`.reports` renders the model in the
eParaksts v1/v2 shapes, as a detailed report and as ETSI TS 119 102-2 XML."""

from remotesign.validation import certvalidator_compat as _compat

_compat.install()
