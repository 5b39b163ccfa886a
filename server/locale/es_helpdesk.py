"""Spanish for the helpdesk and licence messages; merged with ``python -m server.i18n_fill``.

The two refusals of the seed keep its exact wording.
"""

ES = {
    "%(left)s of %(n)s in %(days)s days": "%(left)s de %(n)s en %(days)s días",
    "%(n)s days": "%(n)s días",
    "4 to 128 letters, digits or : . _ / + = -": "De 4 a 128 letras, dígitos o : . _ / + = -",
    "6 to 64 letters, digits and dashes.": "De 6 a 64 letras, dígitos y guiones.",
    "A gate kiosk is reactivated by enrolling it again with a new code.": (
        "Un quiosco de garita se reactiva enrolándolo otra vez con un código nuevo."
    ),
    "A machine with this fingerprint is already active on this serial.": (
        "Ya hay un equipo activo con esta huella en este número de serie."
    ),
    "A policy with this number already exists.": "Ya existe una póliza con este número.",
    "Action": "Acción",
    "Activate": "Activar",
    "Activate a machine": "Activar un equipo",
    "Activation": "Activación",
    "Active": "Activo",
    "Active machines": "Equipos activos",
    "Add a user": "Agregar un usuario",
    "Add user": "Agregar usuario",
    "Agent": "Agente",
    "Agent actions": "Acciones del agente",
    "All areas": "Todas las áreas",
    "Area": "Área",
    "Areas": "Áreas",
    "Assign to me": "Asignármelo",
    "At most %(n)s files.": "Como máximo %(n)s archivos.",
    "Attach files": "Adjuntar archivos",
    "Attach files with the file chooser.": "Adjunte los archivos con el selector de archivos.",
    "Available": "Disponibles",
    "Awaiting approval": "En espera de aprobación",
    "Back to the list": "Regresar al listado",
    "Back to the serial": "Regresar al número de serie",
    "Cancel ticket": "Cancelar ticket",
    "Choose a company from the list.": "Elija una empresa de la lista.",
    "Choose a serial from the list.": "Elija un número de serie de la lista.",
    "Choose an area": "Elija un área",
    "Choose an area from the list.": "Elija un área de la lista.",
    "Choose at least one profile.": "Elija al menos un perfil.",
    "Choose one of your policies.": "Elija una de sus pólizas.",
    "Choose profiles from the list.": "Elija perfiles de la lista.",
    "Choose the policy (serial number) to open a service ticket for.": (
        "Favor de seleccionar la póliza (número de serie) para crear un ticket de servicio."
    ),
    "Close ticket (solved)": "Cerrar ticket (resuelto)",
    "Comment": "Comentario",
    "Company users": "Usuarios de la empresa",
    "Contact hours": "Horario a contactar",
    "Contact phone": "Teléfono para contactar",
    "Control": "Control",
    "Created": "Creado",
    "Customer service": "Atención a clientes",
    "Days": "Días",
    "Days left": "Días restantes",
    "Deactivate": "Desactivar",
    "Deactivated": "Desactivado",
    "Deactivations left": "Desactivaciones disponibles",
    "Description": "Descripción",
    "Description of the problem": "Descripción del problema",
    "Disabled": "Deshabilitado",
    "Download machine list (CSV)": "Descargar listado de equipos (CSV)",
    "Edit": "Editar",
    "Edit serial": "Editar número de serie",
    "Enter a date as YYYY-MM-DD.": "Ingrese una fecha como AAAA-MM-DD.",
    "Expired": "Vencido",
    "Files of this type are not accepted (%(name)s); allowed: %(types)s.": (
        "No se aceptan archivos de este tipo (%(name)s); se permiten: %(types)s."
    ),
    "Filter": "Filtrar",
    "Fingerprint": "Huella del equipo",
    "Finished": "Finalizado",
    "Follow-up": "Seguimiento",
    "Follow-up e-mail": "Correo de seguimiento",
    "Follow-up of the ticket": "Seguimiento del ticket",
    "For example: weekdays 9:00 to 13:00": "Por ejemplo: lunes a viernes de 9:00 a 13:00",
    "Gate kiosk": "Quiosco de garita",
    "Generate ticket": "Generar ticket",
    "Hello %(name)s,\n\n%(admin)s created a Portgate user for you at %(company)s. Your user name is "
    "%(username)s; choose your password here (valid for 72 hours):\n%(link)s": (
        "Hola %(name)s:\n\n%(admin)s le creó un usuario de Portgate en %(company)s. Su nombre de usuario es "
        "%(username)s; elija su contraseña aquí (válido por 72 horas):\n%(link)s"
    ),
    "Hello,\n\n%(author)s replied to your service ticket %(number)s:\n\n%(body)s\n\nSee the whole thread: %(link)s": (
        "Hola:\n\n%(author)s respondió a su ticket de servicio %(number)s:\n\n%(body)s\n\n"
        "Vea todo el seguimiento: %(link)s"
    ),
    "Hello,\n\nWe received your service ticket %(number)s for %(system)s (%(area)s): %(subject)s\n"
    "An agent will contact you. Follow it here:\n%(link)s": (
        "Hola:\n\nRecibimos su ticket de servicio %(number)s para %(system)s (%(area)s): %(subject)s\n"
        "Un agente se comunicará con usted. Dele seguimiento aquí:\n%(link)s"
    ),
    "Hello,\n\nYour service ticket %(number)s has been closed. Please rate the attention you received "
    "(1 to 5 stars) here:\n%(link)s": (
        "Hola:\n\nSu ticket de servicio %(number)s fue cerrado. Por favor califique la atención recibida "
        "(de 1 a 5 estrellas) aquí:\n%(link)s"
    ),
    "Helpdesk console": "Consola de mesa de ayuda",
    "Inactive": "Inactivo",
    "Last seen": "Última conexión",
    "Left blank, one is generated.": "Si se deja en blanco, se genera uno.",
    "Licences": "Licencias",
    "Licences and policies": "Licencias y pólizas",
    "Machine name": "Nombre del equipo",
    "Machines": "Equipos",
    "Machines of this serial": "Equipos de este número de serie",
    "Maximum machines": "Máximo de equipos",
    "Maximum simultaneous open tickets": "Máximo de tickets abiertos simultáneamente",
    "My licences": "Mis licencias",
    "My policies": "Mis pólizas",
    "My tickets": "Mis tickets",
    "Name": "Nombre",
    "New policy": "Nueva póliza",
    "New serial": "Nuevo número de serie",
    "No replies yet.": "Aún no hay respuestas.",
    "Only a closed ticket can be rated.": "Solo se puede calificar un ticket cerrado.",
    "Open or waiting": "Abiertos o en espera",
    "Opened by": "Abierto por",
    "Policies": "Pólizas",
    "Policies of the serial": "# Pólizas",
    "Policy": "Póliza",
    "Policy number": "Número de póliza",
    "Policy saved.": "Póliza guardada.",
    "Portgate: new reply to your service ticket: %(subject)s": (
        "Portgate: nueva respuesta a su ticket de servicio: %(subject)s"
    ),
    "Portgate: service ticket received: %(subject)s": "Portgate: ticket de servicio recibido: %(subject)s",
    "Portgate: your service ticket was closed: %(subject)s": (
        "Portgate: su ticket de servicio fue cerrado: %(subject)s"
    ),
    "Portgate: your user for %(company)s": "Portgate: su usuario de %(company)s",
    "Profiles": "Perfiles",
    "Rate ticket": "Calificar ticket",
    "Rating": "Calificación",
    "Rating (1 to 5)": "Calificación (1 a 5)",
    "Registered (all time)": "Registrados (histórico)",
    "Remove": "Quitar",
    "Reply to ticket": "Responder ticket",
    "Sales": "Ventas",
    "Screenshots, log files, purchase orders, payment receipts…": (
        "Capturas de pantalla, archivos log, órdenes de compra, comprobantes de pago…"
    ),
    "Serial number": "Número de serie",
    "Serial numbers": "Números de serie",
    "Serial saved.": "Número de serie guardado.",
    "Show inactive": "Ver inactivos",
    "Simultaneous open tickets": "Tickets abiertos simultáneamente",
    "Subject": "Asunto",
    "Suspended": "Suspendido",
    "System": "Sistema",
    "Technical support": "Soporte técnico",
    "Thank you for rating this ticket.": "Gracias por calificar este ticket.",
    "The file %(name)s is empty.": "El archivo %(name)s está vacío.",
    "The file %(name)s is larger than %(limit)s.": "El archivo %(name)s pesa más de %(limit)s.",
    "The file %(name)s is not really a .%(ext)s file.": "El archivo %(name)s no es realmente un archivo .%(ext)s.",
    "The file name %(name)s is not allowed.": "El nombre de archivo %(name)s no está permitido.",
    "The identifier the system shows on that machine.": "El identificador que el sistema muestra en ese equipo.",
    "The machine was activated.": "El equipo fue activado.",
    "The machine was deactivated; its slot is free.": "El equipo fue desactivado; su lugar quedó disponible.",
    "The policy %(number)s expired on %(date)s.": "La póliza %(number)s venció el %(date)s.",
    "The serial %(serial)s already has its %(n)s machines active; deactivate one to free a slot.": (
        "El número de serie %(serial)s ya tiene sus %(n)s equipos activos; desactive uno para liberar un lugar."
    ),
    "The serial %(serial)s expired on %(date)s; renew it to activate machines.": (
        "El número de serie %(serial)s venció el %(date)s; renuévelo para activar equipos."
    ),
    "The serial %(serial)s is suspended; contact support.": (
        "El número de serie %(serial)s está suspendido; comuníquese con soporte."
    ),
    "The serial number: %(serial)s has reached the limit of tickets allowed, simultaneously": (
        "El número de serie: %(serial)s ha alcanzado el límite de tickets permitidos, simultáneamente"
    ),
    "The terminal holds no licence serial for %(system)s; an administrator must register one "
    "before kiosks can enrol.": (
        "La terminal no tiene un número de serie de licencia para %(system)s; un administrador debe "
        "registrar uno antes de enrolar quioscos."
    ),
    "The ticket %(number)s is cancelled; it can no longer be changed.": (
        "El ticket %(number)s está cancelado; ya no se puede modificar."
    ),
    "The ticket %(number)s is closed; it can no longer be changed.": (
        "El ticket %(number)s está cerrado; ya no se puede modificar."
    ),
    "The validity must end after the registration date.": "La vigencia debe terminar después de la fecha de registro.",
    "This machine is already inactive.": "Este equipo ya está inactivo.",
    "This message was already added to the ticket.": "Este mensaje ya fue agregado al ticket.",
    "This serial already exists.": "Este número de serie ya existe.",
    "This serial has used its %(n)s deactivations of the last %(days)s days; the next one is possible on %(date)s.": (
        "Este número de serie ya usó sus %(n)s desactivaciones de los últimos %(days)s días; "
        "la siguiente será posible el %(date)s."
    ),
    "This ticket has already been rated.": "Este ticket ya fue calificado.",
    "This user has a staff profile; ask the administrator.": (
        "Este usuario tiene un perfil del personal; consulte al administrador."
    ),
    "Ticket": "Ticket",
    "Ticket list": "Listado tickets",
    "Ticket number": "# de Ticket",
    "To add to the ticket, reply to this message or use the link above.": (
        "Para agregar algo al ticket, responda a este mensaje o use el enlace de arriba."
    ),
    "User %(username)s added; we e-mailed a link to choose a password.": (
        "Usuario %(username)s agregado; le enviamos por correo un enlace para elegir su contraseña."
    ),
    "User %(username)s removed from the company.": "Usuario %(username)s quitado de la empresa.",
    "Valid": "Vigente",
    "Valid until": "Vigencia",
    "View detail": "Ver detalle",
    "You already have an open ticket for the requested system and e-mail; please check the list of tickets": (
        "Ya cuenta con un ticket abierto para el sistema y correo solicitado, favor de consultar la lista de tickets"
    ),
    "You cannot remove your own user.": "No puede quitar su propio usuario.",
    "Your reply": "Su respuesta",
    "Your ticket %(number)s was generated.": "Su ticket %(number)s fue generado.",
    "by e-mail": "por correo",
}
