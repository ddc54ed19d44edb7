"""ServingError: a request the server cannot answer, with the HTTP status REST answers and the gRPC
status code gRPC answers. Every problem with a request is one, with a 4xx status.
"""

# HTTP status -> gRPC status code name (grpc.StatusCode attribute) for ServingError.
_GRPC_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED",
               503: "UNAVAILABLE", 500: "INTERNAL"}


class ServingError(Exception):
    """A request the server cannot answer: `status` is the HTTP status (4xx for bad requests)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def grpc_code(self) -> str:
        return _GRPC_CODES.get(self.status, "INVALID_ARGUMENT" if self.status < 500 else "INTERNAL")


def bad_request(message: str) -> ServingError:
    return ServingError(400, message)
