"""The I/O side of XCAP: the HTTP client (httpx on trio), the on-disk document cache and
offline journal, and the document manager that drives them with the core's operations."""
