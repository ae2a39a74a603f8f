"""The registry's HTTP routes: homes, members, devices, the catalogue, authorisation."""
