"""An async client for Puzzel's Contact Centre REST API (ContactCentre5), usable on its own."""
