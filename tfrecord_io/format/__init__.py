"""The TFRecord format core, shared by image and table exports.

Framing, CRC-32C and gzip (:mod:`.records`, with the gzip member reader in :mod:`._gzip`), where
each record of a file starts (:mod:`.index`), the ``tf.train.Example`` wire codec
(:mod:`.example`), files written in shards (:mod:`.shards`) and committed to their folder so that
a crash leaves the old or the new export (:mod:`.destination`). Nothing here knows about grids or
georeferencing.
"""
