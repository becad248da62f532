"""TLS listeners whose key and certificate a reload replaces, dropping nobody.

An ssl: endpoint string (--listen, --irc, --web, --metrics) names a key and a
certificate file, which Twisted reads once into CertificateOptions when the
string is parsed; the listener then asks those options for each new
connection's TLS session. SwappableTLS stands in for them: it hands each new
connection to the options it holds now, and swap puts freshly read ones in
(a renewed certificate). Connections already open keep the session they
started with, so nobody is dropped; new ones get the new certificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import (
    IOpenSSLContextFactory,
    IOpenSSLServerConnectionCreator,
    IReactorCore,
    IStreamServerEndpoint,
)
from zope.interface import implementer

if TYPE_CHECKING:
    from OpenSSL import SSL
    from twisted.internet.ssl import CertificateOptions
    from twisted.protocols.tls import TLSMemoryBIOProtocol


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLContextFactory)
class SwappableTLS:
    """The TLS options of one listener, replaceable while it listens.

    description: the listener's endpoint string as given (it names the
    files a reload reads again).
    """

    def __init__(self, description: str, options: CertificateOptions) -> None:
        self.description = description
        self.options = options

    def serverConnectionForTLS(self, protocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """A new connection's TLS session, from the options held now."""
        connection: SSL.Connection = self.options.serverConnectionForTLS(protocol)
        return connection

    def getContext(self) -> SSL.Context:
        """The context of the options held now (the older interface's way to ask)."""
        context: SSL.Context = self.options.getContext()
        return context

    def swap(self, options: CertificateOptions) -> None:
        """Give new connections options (a renewed key and certificate) from now on."""
        self.options = options

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of the certificate held now (for the log)."""
        return certificate_fingerprint(self.options)


def certificate_fingerprint(options: CertificateOptions) -> str:
    """The SHA-256 fingerprint of the certificate options serve, AB:CD:... ."""
    certificate: Any = options.certificate  # an OpenSSL X509
    return str(certificate.digest("sha256").decode("ascii"))


def make_swappable(
    description: str, endpoint: IStreamServerEndpoint
) -> SwappableTLS | None:
    """Put a SwappableTLS in an ssl: endpoint before it listens; None if no TLS.

    Twisted's SSL4ServerEndpoint keeps its options in _sslContextFactory and
    hands them to listenSSL when it listens: what is there then is what every
    connection of the listener asks.
    """
    options = getattr(endpoint, "_sslContextFactory", None)
    if options is None or not hasattr(options, "serverConnectionForTLS"):
        return None
    swappable = SwappableTLS(description, options)
    endpoint._sslContextFactory = swappable  # type: ignore[attr-defined]
    return swappable


def read_certificate(description: str, reactor: IReactorCore) -> CertificateOptions:
    """Read the key and certificate an ssl: endpoint string names, as at start.

    Raises (ValueError, OSError, OpenSSL's Error...) when a file is missing,
    unreadable, not PEM, or the key is not the certificate's: the context is
    made here, so that a bad pair is refused now rather than failing every
    new connection.
    """
    from twisted.internet.endpoints import serverFromString

    endpoint = serverFromString(reactor, description)  # parses only: binds nothing
    options: CertificateOptions = endpoint._sslContextFactory
    options.getContext()
    return options
