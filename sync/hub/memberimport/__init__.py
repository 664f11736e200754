"""Bulk import of a chain's existing members into the hub from an Excel workbook
(`loyalty-hub members import`).

    columns.py   which column is which: headers in Persian or English       (pure)
    cells.py     one cell to one value, or a problem in both languages      (pure)
    check.py     rows to members: in-file duplicates, referrers, the plan   (pure)
    book.py      reading the workbook (streamed), writing the error workbook
    hubside.py   what the hub holds, and the one all-or-nothing write
"""
