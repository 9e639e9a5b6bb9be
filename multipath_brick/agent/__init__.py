"""The host agent (Managed Block Storage flow: attach, detach, volumes_info). Not built yet."""
