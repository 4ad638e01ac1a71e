"""One module per section of the report, in the order the report shows them.

``overview`` (1, the runs), ``training`` (2, configuration and training), ``components``
(3, number distributions; 5, dominant components), ``observations`` (4), ``radius`` (6),
``hits`` (7, with ``hit_metrics`` reading the box test's metrics and ``knn`` the k-NN
test's), ``search`` (8), ``decoded`` (9) and ``other`` (every image not shown before).
Each builds a format-free :class:`~aelatent.reporting.document.Section` from a
:class:`~aelatent.reporting.sections.context.SectionContext`; ``formatting`` holds how
numbers and intervals are written. :mod:`aelatent.reporting.content` puts them in order.
"""
