"""Finding article URLs: a source's feeds, sitemaps and listing pages, and the seen-URL window."""
