"""The portal: the web page a product embeds or links so that its users manage their own
workspace's webhooks. Belongs here: portal links (signed, spent once across replicas),
the session cookie and CSRF token, the portal's gate for ``/portal/api/*``, the routes that
serve the page, and the page itself (``static/``: HTML, CSS and vanilla JavaScript).
The portal's data calls reuse the management API's routes under ``/portal/api``."""
