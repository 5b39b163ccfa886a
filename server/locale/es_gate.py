"""Spanish for the gate area's new message ids (kiosk protocol errors, supervisor pages).

To be merged into ``es/LC_MESSAGES/messages.po``; msgid → msgstr.
"""

ES = {
    "%(n)s open conflicts": "%(n)s conflictos abiertos",
    "A conflict is a ticket that kiosks accepted while offline although it was already used or deleted.": (
        "Un conflicto es un ticket que los quioscos aceptaron sin conexión aunque ya estaba usado o eliminado."
    ),
    "A kiosk token is required.": "Se requiere el token de un quiosco.",
    "A kiosk with this name already exists.": "Ya existe un quiosco con este nombre.",
    "A scan id of 8 to 64 letters, digits, dashes or underscores is required.": (
        "Se requiere un identificador de lectura de 8 a 64 letras, dígitos, guiones o guiones bajos."
    ),
    "Accepted": "Aceptado",
    "Accepted after deletion": "Aceptado después de eliminado",
    "Accepted twice": "Aceptado dos veces",
    "Agent": "Agente",
    "At most %(n)s scans per upload.": "Como máximo %(n)s lecturas por envío.",
    "Awaiting enrolment": "Esperando registro",
    "Back to kiosks": "Volver a quioscos",
    "Choose a reason from the list.": "Elija un motivo de la lista.",
    "Choose itineraries from the list.": "Elija itinerarios de la lista.",
    "Clear": "Limpiar",
    "Conflicts": "Conflictos",
    "Create kiosk": "Crear quiosco",
    "Detected": "Detectado",
    "Each scan must be a JSON object.": "Cada lectura debe ser un objeto JSON.",
    "Enrolment code": "Código de registro",
    "Enrolment code for %(name)s": "Código de registro para %(name)s",
    "Enter a date like 2026-11-24.": "Ingrese una fecha como 2026-11-24.",
    "Filter": "Filtrar",
    "First use": "Primer uso",
    "From (%(zone)s)": "Desde (%(zone)s)",
    "Gate": "Puerta",
    "Kiosk": "Quiosco",
    "Kiosks": "Quioscos",
    "Last seen": "Última conexión",
    "Mode": "Modo",
    "Name": "Nombre",
    "New enrolment code": "Nuevo código de registro",
    "New kiosk": "Nuevo quiosco",
    "Newest": "Más recientes",
    "Offline": "Sin conexión",
    "Older": "Anteriores",
    "Online": "En línea",
    "Only a kiosk that has not enrolled yet can get a new code.": (
        "Solo un quiosco que aún no se ha registrado puede recibir un código nuevo."
    ),
    "Only these itineraries (none chosen: all)": "Solo estos itinerarios (ninguno elegido: todos)",
    "Open": "Abiertos",
    "Pending uploads": "Envíos pendientes",
    "Reason": "Motivo",
    "Received": "Recibido",
    "Refused": "Rechazado",
    "Resolution": "Resolución",
    "Resolution note": "Nota de resolución",
    "Resolve": "Resolver",
    "Resolved": "Resueltos",
    "Revoke": "Dar de baja",
    "Revoked": "Dado de baja",
    "Say true or false.": "Indique true o false.",
    "Scan log": "Registro de lecturas",
    "Scanned at the kiosk": "Leído en el quiosco",
    "Second acceptance": "Segunda aceptación",
    "Send a list of scans.": "Envíe una lista de lecturas.",
    "Sync lag": "Retraso de sincronización",
    "The reason does not match the verdict.": "El motivo no corresponde al veredicto.",
    "The scan time is required, as ISO-8601 with a UTC offset.": (
        "La hora de lectura es obligatoria, en ISO-8601 con desfase UTC."
    ),
    "The scan time needs a UTC offset, for example 2026-11-24T08:00:00-05:00.": (
        "La hora de lectura necesita un desfase UTC, por ejemplo 2026-11-24T08:00:00-05:00."
    ),
    "The scanned code is required.": "El código leído es obligatorio.",
    "This conflict is already resolved.": "Este conflicto ya está resuelto.",
    "This enrolment code has expired; ask the supervisor for a new one.": (
        "Este código de registro ha expirado; pida uno nuevo al supervisor."
    ),
    "This enrolment code is not valid (or was already used).": "Este código de registro no es válido (o ya fue usado).",
    "This kiosk has been revoked.": "Este quiosco fue dado de baja.",
    "This page refreshes every 10 seconds.": "Esta página se actualiza cada 10 segundos.",
    "This scan id was already used by another kiosk.": "Otro quiosco ya usó este identificador de lectura.",
    "Ticket": "Ticket",
    "To (%(zone)s)": "Hasta (%(zone)s)",
    "Type this code on the kiosk to enrol it. It works once and expires in %(hours)s hours. It is shown only now.": (
        "Ingrese este código en el quiosco para registrarlo. Sirve una sola vez y expira en %(hours)s horas. "
        "Solo se muestra ahora."
    ),
    "Unknown reason code.": "Código de motivo desconocido.",
    "Verdict": "Veredicto",
    "kiosk: %(reason)s": "quiosco: %(reason)s",
}
