"""Fleet audit: the organisation's accounts against Qualys's connectors (design section 10).

``python -m provider.audit`` is the command line; ``provider.audit.lambda_handler`` the
scheduled function. Importing this package builds no client and imports no rich.
"""

from provider.audit.function import lambda_handler

__all__ = ["lambda_handler"]
