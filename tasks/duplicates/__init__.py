"""Finding repeated text: normalized paragraphs and hashes (textnorm), a site's boilerplate lines
(boilerplate), and near-duplicate bodies by MinHash (minhash) in a shared LSH index (lsh)."""
