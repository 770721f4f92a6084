"""What leaves the process: the HTTP delivery client, the destination policy (no request
reaches a non-public address) and Standard Webhooks signing.

The dispatcher, the challenge and test-fire all send through here, so one set of rules holds
for every outgoing request.
"""
