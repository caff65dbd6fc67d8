"""The report, the sixth stage: what a run learned, computed (scores), drawn (figures) and written as
one HTML page (page, page.html) by ``write.write_report``. Imports from every stage before it.
"""
