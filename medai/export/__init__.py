"""Exports for planning and 3D printing: surface meshes of label maps (STL / OBJ).

Importing this package imports neither VTK nor Slicer; they load inside the functions that need them.
"""

from medai.export.mesh import label_surfaces, write_meshes
from medai.export.mesh_files import safe_file_name, write_surfaces

__all__ = ["label_surfaces", "safe_file_name", "write_meshes", "write_surfaces"]
