"""API tokens for the management API: the token format, the ``api-tokens`` record, the
registry that follows the topic and authenticates ``Authorization: Bearer`` values, and the
writer that creates and revokes tokens.

A token is ``wwt_<id>_<secret>``; only the SHA-256 of the whole string is stored, in the
compacted ``api-tokens`` topic keyed by id. Nothing here serves HTTP: the API and the portal
call :meth:`TokenRegistry.authenticate` and act on the :class:`Principal` it returns.
"""
