"""harvester: bulk harvests of the NOBB Export API and the DBK ONIX 3.1 export into NDJSON."""

from harvester.errors import HarvesterError

__all__ = ["HarvesterError", "__version__"]
__version__ = "0.1.0"
