"""The provider's shipped DAGs and the code that only DAGs need (settings resolution, small task bodies).

Nothing outside this package imports it: the operators, hooks and transfers stay usable without the
example DAGs, and the DAGs are built from the provider's public operators only.
"""

from __future__ import annotations
