"""Screening for material no list knows yet: image classifiers, caption and prompt rules, dataset scores and
neighbours of hits.

Everything here produces numbers in an item's ``scores`` (``classifier.<name>``, ``text.<category>``, ``punsafe``,
``neighbour``) and names (the term lists that matched); it decides nothing. The policy in ``cleanset.assess`` turns
scores and matches into a verdict and names the rules that fired. Sits above ``matching`` and below ``assess``; see
``docs/screening.md``.

Modules: ``classifier`` (ONNX classifiers, the ``SCREENERS`` registry), ``text`` (term matching), ``terms`` (the
versioned term list store), ``scores`` (dataset columns), ``neighbours`` (faiss), ``stage`` (the scan's screening
stage). Imported lazily by callers: ``import cleanset.screening`` loads none of them.
"""
