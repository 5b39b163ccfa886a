"""Spanish for the mail outbox page; merged with ``python -m server.i18n_fill server/locale/es_mail.py``."""

ES = {
    "Attempts": "Intentos",
    "Being sent": "Enviándose",
    "Failed": "Fallido",
    "Last error": "Último error",
    "Mail outbox": "Correo saliente",
    "Mail that has not reached the mail server yet. Failed attempts are retried with growing pauses; after "
    "about six hours a message is marked failed until you retry it.": (
        "Correo que aún no llegó al servidor de correo. Los intentos fallidos se repiten con pausas cada vez "
        "más largas; tras unas seis horas el mensaje queda como fallido hasta que usted lo reintente."
    ),
    "Next attempt": "Próximo intento",
    "Queued": "En cola desde",
    "Retry now": "Reintentar ahora",
    "Retrying": "Reintentando",
    "To": "Para",
    "Waiting": "En espera",
}
