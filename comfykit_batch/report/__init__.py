"""Looking at and using a batch's results: XY grid images, a static gallery page, dataset export.

Everything here reads an output folder (``index.json`` + ``files/``) and writes new files beside
or outside it; nothing here touches the network or changes what the batch wrote. Import the
submodules directly (``report.grid.make_grid``, ``report.gallery.write_gallery``,
``report.export.export``): Pillow is only loaded when a picture is drawn.
"""
