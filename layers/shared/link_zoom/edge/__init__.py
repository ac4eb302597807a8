"""The edge beside `link_zoom.api`: what requests, stream batches and queue messages look like, and the answers.

Parsing and shaping only: it turns events into typed values for the domain and the domain's results into
responses. It imports the domain (for its types), never an adapter or `link_zoom.composition`.
"""
