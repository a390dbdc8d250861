"""``souk.inventory.v1``: ``inventory_pb2`` (messages) and ``inventory_pb2_grpc`` (stub,
servicer base and ``add_InventoryServicer_to_server``), generated from ``inventory.proto``
when the package is built.
"""
