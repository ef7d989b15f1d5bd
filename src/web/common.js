/* Triagem web pages: what the three pages share.
 * Strings in both languages, the API client (bearer token asked for on a 401
 * and kept in localStorage), storage that survives a browser blocking it,
 * problems said in the page's own words (by `code` and `field`, never the
 * API's English `detail`, which goes to a tooltip and the console), in-page
 * dialogs for confirmations and names, the live event stream with
 * reconnection, a throttle for refreshes, the server's clock, and formatting
 * of colours, deadlines, ages, protocol numbers and times.
 * Plain browser JavaScript, no build step, no framework. */
"use strict";

const Triagem = (() => {
  const STRINGS = {
    "pt-BR": {
      "app": "Triagem",
      "lang.switch": "English",
      "token.signout": "Sair",
      "token.title": "Acesso",
      "token.intro": "Este serviço exige um token de acesso. Peça-o ao administrador do sistema.",
      "token.label": "Token de acesso",
      "token.submit": "Entrar",
      "token.cancel": "Cancelar",
      "token.required": "Sem um token válido a página não pode consultar o serviço.",
      "token.role": "O perfil deste token não pode usar esta página: entre com o token de um perfil que possa.",
      "token.empty": "Escreva o token recebido da administração.",
      "reconnecting": "Reconectando…",
      "offline": "Sem conexão com o servidor",
      "loading": "Carregando…",
      "close": "Fechar",
      "cancel": "Cancelar",
      "back": "Voltar",
      "queue.untriaged": "Aguardando triagem",
      "immediate": "imediato",
      "min": "min",
      "hm.compact": "{h}h{m}",
      "lt1min": "< 1 min",
      "target": "meta",
      "overdue": "Atrasado",
      "overdue.one": "1 atrasado",
      "overdue.n": "{n} atrasados",
      "due.left": "faltam {d}",
      "due.over": "{d} de atraso",
      "since.arrival": "chegou há {d}",
      "since.call": "chamado há {d}",
      "age.years": "{n} anos",
      "age.year": "1 ano",
      "age.months": "{n} meses",
      "age.month": "1 mês",
      "waiting.n": "aguardando",
      "status.awaiting_triage": "Aguardando triagem",
      "status.in_triage": "Em triagem",
      "status.waiting": "Aguardando atendimento",
      "status.called": "Chamado",
      "status.in_treatment": "Em atendimento",
      "status.finished": "Finalizado",
      "status.left": "Saiu",
      "outcome.discharged": "Alta",
      "outcome.admitted": "Internação",
      "outcome.transferred": "Transferência",
      "outcome.deceased": "Óbito",
      "reason.lwbs": "Saiu sem ser atendido",
      "reason.cancelled": "Cancelado",
      "reason.error": "Registro por engano",
      "reason.no_show": "Não compareceu às chamadas",
      "err.network": "Sem conexão com o servidor. Verifique a rede e tente de novo.",
      "err.malformed": "Pedido mal formado",
      "err.unauthorized": "Token ausente ou inválido",
      "err.forbidden": "Seu perfil não tem permissão para esta ação",
      "err.rate_limited": "Muitos pedidos seguidos; aguarde um instante",
      "err.not_found": "Não encontrado",
      "err.method_not_allowed": "Operação não permitida",
      "err.invalid_transition": "A situação do paciente não permite esta ação (talvez outra estação já a tenha mudado)",
      "err.too_large": "Dados grandes demais",
      "err.request_timeout": "Os dados demoraram demais para chegar ao servidor; nada foi alterado, tente de novo",
      "err.unsupported_media_type": "Formato de dados não aceito",
      "err.invalid": "Dados inválidos",
      "err.invalid.name": "Nome inválido: escreva de 1 a 200 caracteres, com letras visíveis e sem caracteres de controle",
      "err.invalid.colour": "Classificação de risco desconhecida neste protocolo",
      "err.invalid.colours": "Escolha cores do protocolo",
      "err.invalid.room": "Sala desconhecida nesta unidade",
      "err.invalid.arrived_at": "Hora de chegada fora do aceito: no máximo 24 h atrás e não no futuro",
      "err.invalid.birth_date": "Data de nascimento inválida: deve estar entre 1900 e hoje",
      "err.invalid.complaint": "Queixa inválida: no máximo 1000 caracteres, sem caracteres de controle ou de direção do texto",
      "err.invalid.document": "Documento inválido: no máximo 32 caracteres, sem caracteres de controle ou de direção do texto",
      "err.invalid.note": "Observação inválida: no máximo 1000 caracteres, sem caracteres de controle ou de direção do texto",
      "err.invalid.by": "Nome inválido: escreva de 1 a 100 caracteres visíveis, sem caracteres de controle ou de direção do texto",
      "err.invalid.outcome": "Escolha um desfecho",
      "err.invalid.reason": "Escolha um motivo",
      "err.invalid.unit": "Unidade de destino inválida",
      "err.invalid.q": "Escreva o que procurar",
      "err.invalid.contact.phone": "Celular inválido: escreva com + e o código do país, só números (ex.: +5511987654321)",
      "err.invalid.contact.email": "E-mail inválido: confira o endereço (ex.: maria@exemplo.com)",
      "err.unavailable": "O serviço não pode registrar alterações agora; nada foi alterado, tente de novo em instantes",
      "err.not_leader": "O serviço está passando para o outro servidor; nada foi alterado, tente de novo em instantes",
      "err.outcome_unknown": "A base de dados não confirmou: a alteração pode ter sido registrada ou não. Confira o paciente antes de repetir",
      "err.other": "Erro do servidor ({status})",
      "err.details": "Detalhe técnico (para o suporte): {detail}",
      // Display
      "display.title": "Painel de chamadas",
      "display.now": "Chamando agora",
      "display.none": "Aguardando chamadas",
      "display.recent": "Últimas chamadas",
      "display.queues": "Fila de espera",
      "display.room": "Dirija-se a",
      "display.sound.on": "Som ligado",
      "display.sound.off": "Som desligado",
      "display.sound.blocked": "Toque para ativar o som",
      "display.sound.hint": "O navegador bloqueou o som: toque na tela uma vez, ou inicie-o com --autoplay-policy=no-user-gesture-required para tocar sem toque.",
      "display.say": "Senha {ticket}, {room}",
      "display.left": "Tempo restante",
      "display.over": "Atraso",
      "display.longest": "Maior espera: {d}",
      "display.empty": "Ninguém",
      // Reception
      "reception.title": "Recepção",
      "admit.title": "Nova admissão",
      "admit.name": "Nome do paciente",
      "admit.colour": "Classificação de risco",
      "admit.colour.none": "Aguardando triagem (sem cor)",
      "admit.colour.hint": "a classificação é da enfermagem",
      "admit.complaint": "Queixa principal",
      "admit.complaint.count": "{n} de {max} caracteres",
      "admit.complaint.full": "Limite de {max} caracteres: o que passar disso não é guardado",
      "admit.arrived": "Hora de chegada",
      "admit.arrived.hint": "Em branco: agora",
      "admit.birth": "Data de nascimento",
      "admit.document": "Documento (CPF, RG, CNS)",
      "admit.optional": "opcional",
      "admit.submit": "Admitir paciente",
      "admit.busy": "Admitindo…",
      "admit.done": "Paciente admitido",
      "admit.protocol": "Protocolo",
      "admit.ticket": "Senha",
      "admit.print": "Imprimir comprovante",
      "admit.new": "Nova admissão",
      "admit.future": "A hora de chegada não pode estar no futuro.",
      "admit.name.missing": "Escreva o nome do paciente.",
      "protocol.copy": "Copiar protocolo",
      "protocol.copied": "Protocolo {protocol} copiado.",
      "receipt.title": "Comprovante de atendimento",
      "receipt.keep": "Guarde este número: ele comprova o seu atendimento.",
      "receipt.wait": "Aguarde ser chamado pela sua senha no painel.",
      "receipt.name": "Paciente",
      "receipt.arrived": "Chegada",
      "receipt.colour": "Classificação",
      "receipt.printed": "Emitido em",
      "receipt.code": "Código de verificação",
      "receipt.scan": "Acompanhe pelo celular: aponte a câmera para o QR code.",
      "receipt.or": "Ou acesse {url} e informe o protocolo e o código.",
      "receipt.qr": "QR code do link de acompanhamento de {ticket}",
      "receipt.reprint": "Reimprimir comprovante",
      "contact.title": "Contato para mensagens",
      "contact.phone": "Celular",
      "contact.phone.hint": "com + e o código do país",
      "contact.email": "E-mail",
      "contact.consent": "Aceita receber mensagens",
      "contact.consent.hint": "Com o aceite, o paciente recebe por {channels}: {what}.",
      "contact.consent.what.admitted": "o protocolo com o link de acompanhamento",
      "contact.consent.what.called": "um aviso quando for chamado",
      "contact.consent.what.finished": "um aviso no fim do atendimento",
      "contact.consent.off": "Este serviço não envia mensagens: o contato fica só na ficha do paciente.",
      "contact.consent.only.sms": "Este serviço envia mensagens só por SMS: escreva o celular.",
      "contact.consent.only.email": "Este serviço envia mensagens só por e-mail: escreva o e-mail.",
      "contact.channel.email": "e-mail",
      "contact.channel.sms": "SMS",
      "contact.consent.nochannel": "Para enviar mensagens, escreva o celular ou o e-mail.",
      "contact.yes": "aceita mensagens",
      "contact.no": "não aceita mensagens",
      "patient.contact": "Contato",
      "patient.code": "Código",
      "messages.title": "Mensagens ao paciente",
      "messages.nocontact": "Sem contato: nenhuma mensagem será enviada.",
      "messages.noconsent": "Sem aceite: nenhuma mensagem será enviada.",
      "messages.off": "Este serviço não envia mensagens.",
      "messages.unreachable": "Nenhum canal de mensagens do serviço alcança este contato: nenhuma mensagem será enviada.",
      "messages.none": "Nenhuma mensagem até agora.",
      "messages.loading": "Consultando as mensagens…",
      "messages.channel.email": "E-mail",
      "messages.channel.sms": "SMS",
      "messages.event.admitted": "protocolo e link",
      "messages.event.called": "chamada",
      "messages.event.finished": "fim do atendimento",
      "messages.state.pending": "enviando…",
      "messages.state.delivered": "enviada",
      "messages.state.failed": "não foi enviada",
      "messages.attempts": "{n} tentativas",
      "messages.error": "Não foi possível consultar as mensagens agora.",
      "lookup.title": "Consultar paciente",
      "lookup.label": "Protocolo, nome, documento ou senha de hoje",
      "lookup.submit": "Consultar",
      "lookup.bad": "Escreva um protocolo (17 dígitos), um nome, um documento ou uma senha.",
      "lookup.notfound": "Não encontrado: nenhum paciente tem este protocolo.",
      "lookup.none": "Nenhum paciente encontrado para “{q}”.",
      "lookup.results": "{n} encontrados (os de chegada mais recente primeiro)",
      "lookup.result.one": "1 encontrado",
      "lookup.more": "Mostrando os 50 mais recentes; refine a busca.",
      "lookup.open": "Abrir",
      "lookup.open.label": "Abrir {ticket} ({name})",
      "search.label": "Buscar paciente",
      "search.placeholder": "Nome, documento ou senha",
      "search.submit": "Buscar",
      "search.title": "Busca: “{q}”",
      "patient.status": "Situação",
      "patient.unit": "Unidade",
      "patient.arrived": "Chegada",
      "patient.waited": "Espera",
      "patient.position": "Posição na fila",
      "patient.room": "Sala",
      "patient.outcome": "Desfecho",
      "patient.reason": "Motivo da saída",
      "patient.complaint": "Queixa",
      "patient.triage_note": "Nota da triagem",
      "patient.age": "Idade",
      "patient.document": "Documento",
      "patient.protocol": "Protocolo",
      "patient.due": "Meta",
      "leave.reason": "Motivo",
      "leave.submit": "Marcar como saiu",
      "leave.title": "Marcar como saiu",
      "leave.confirm": "{ticket} ({name}) sairá da fila com o motivo “{reason}”. Isto não pode ser desfeito.",
      "leave.ok": "Confirmar saída",
      "leave.done": "{ticket} marcado como saiu.",
      // Clinician
      "clinician.title": "Atendimento",
      "callbar.label": "Chamar pacientes",
      "view.label": "Visão",
      "view.treatment": "Atendimento",
      "view.triage": "Triagem",
      "call.title": "Chamar próximo",
      "call.room": "Sala",
      "call.colours": "Cores",
      "call.colours.all": "todas",
      "call.colours.hint": "nenhuma marcada: todas",
      "call.submit": "Chamar próximo",
      "call.triage.title": "Triagem",
      "call.triage.submit": "Chamar para triagem",
      "call.nobody": "Ninguém aguardando nesta fila.",
      "call.done": "{ticket} chamado para {room}.",
      "rooms.title": "Nas salas",
      "rooms.free": "livre",
      "rooms.mine": "sua sala",
      "rooms.count": "{n} em sala",
      "active.start": "Iniciar atendimento",
      "active.finish": "Finalizar",
      "active.outcome": "Desfecho",
      "active.outcome.choose": "Escolha o desfecho…",
      "active.outcome.missing": "Escolha o desfecho antes de finalizar.",
      "active.outcome.label": "Desfecho de {ticket}",
      "active.noshow": "Não compareceu",
      "active.recall": "Chamar de novo",
      "active.classify": "Classificar",
      "active.gone": "{ticket}: {status}.",
      "finish.title": "Finalizar {ticket}",
      "finish.confirm": "Finalizar o atendimento de {ticket} ({name}) com o desfecho “{outcome}”? Isto não pode ser desfeito.",
      "finish.ok": "Finalizar com “{outcome}”",
      "noshow.title": "Última falta de {ticket}",
      "noshow.confirm": "Esta é a falta nº {n} de {ticket} ({name}), o limite da unidade. O paciente será marcado como “saiu” (não compareceu às chamadas) e deixará a fila. Isto não pode ser desfeito.",
      "noshow.ok": "Marcar falta e saída",
      "noshow.count": "faltas: {n} de {max}",
      "queue.title": "Fila de atendimento",
      "queue.triage.title": "Fila de triagem",
      "queue.empty": "Ninguém aguardando.",
      "queue.total": "{n} aguardando",
      "queue.partial": "Mostrando os primeiros {n} de {total}, na ordem da fila.",
      "list.moved": "A lista mudou bem na hora do clique: nada foi feito. Confira e clique de novo.",
      "col.pos": "Nº",
      "col.ticket": "Senha",
      "col.name": "Nome",
      "col.patient": "Paciente",
      "col.colour": "Cor",
      "col.complaint": "Queixa",
      "col.due": "Meta",
      "col.actions": "Ações",
      "complaint.more": "ver queixa completa",
      "complaint.less": "ver menos",
      "retriage": "Reclassificar",
      "retriage.title": "Reclassificar {ticket} ({name})",
      "classify.title": "Classificar {ticket} ({name})",
      "retriage.note": "Observação",
      "retriage.submit": "Salvar classificação",
      "retriage.choose": "Escolha a cor da classificação.",
      "transfer": "Transferir",
      "transfer.title": "Transferir {ticket} ({name})",
      "transfer.unit": "Para a unidade",
      "transfer.submit": "Transferir",
      "transfer.none": "Não há outra unidade para onde transferir.",
      "alerts.title": "Alertas ativos",
      "alerts.none": "Nenhum alerta ativo.",
      "alerts.forbidden": "Seu perfil não pode ver alertas.",
      "alerts.ack": "Reconhecer",
      "alerts.ack.label": "Reconhecer o alerta de {ticket}",
      "alerts.warning": "Aviso",
      "alerts.breach": "Tempo estourado",
      "alerts.level": "nível {n}",
      "alerts.acknowledged": "reconhecido",
      "alerts.by": "Reconhecendo como {name}",
      "alerts.by.change": "trocar nome",
      "who.title": "Quem reconhece os alertas?",
      "who.intro": "Seu nome fica registrado em cada alerta que você reconhecer. Ele é guardado neste navegador.",
      "who.label": "Seu nome",
      "who.submit": "Salvar",
      "who.missing": "Escreva seu nome para reconhecer alertas.",
      "done": "Feito.",
    },
    "en": {
      "app": "Triagem",
      "lang.switch": "Português",
      "token.signout": "Sign out",
      "token.title": "Sign in",
      "token.intro": "This service needs an access token. Ask the system administrator for one.",
      "token.label": "Access token",
      "token.submit": "Sign in",
      "token.cancel": "Cancel",
      "token.required": "Without a valid token this page cannot reach the service.",
      "token.role": "This token's role cannot use this page: sign in with the token of a role that can.",
      "token.empty": "Write the token the administration gave you.",
      "reconnecting": "Reconnecting…",
      "offline": "No connection to the server",
      "loading": "Loading…",
      "close": "Close",
      "cancel": "Cancel",
      "back": "Go back",
      "queue.untriaged": "Awaiting triage",
      "immediate": "immediate",
      "min": "min",
      "hm.compact": "{h}h {m}m",
      "lt1min": "< 1 min",
      "target": "target",
      "overdue": "Overdue",
      "overdue.one": "1 overdue",
      "overdue.n": "{n} overdue",
      "due.left": "{d} left",
      "due.over": "overdue by {d}",
      "since.arrival": "arrived {d} ago",
      "since.call": "called {d} ago",
      "age.years": "{n} yrs",
      "age.year": "1 yr",
      "age.months": "{n} mo",
      "age.month": "1 mo",
      "waiting.n": "waiting",
      "status.awaiting_triage": "Awaiting triage",
      "status.in_triage": "In triage",
      "status.waiting": "Waiting for a clinician",
      "status.called": "Called",
      "status.in_treatment": "In treatment",
      "status.finished": "Finished",
      "status.left": "Left",
      "outcome.discharged": "Discharged",
      "outcome.admitted": "Admitted",
      "outcome.transferred": "Transferred",
      "outcome.deceased": "Deceased",
      "reason.lwbs": "Left without being seen",
      "reason.cancelled": "Cancelled",
      "reason.error": "Registered by mistake",
      "reason.no_show": "Did not answer the calls",
      "err.network": "No connection to the server. Check the network and try again.",
      "err.malformed": "Malformed request",
      "err.unauthorized": "Missing or invalid token",
      "err.forbidden": "Your role may not do this",
      "err.rate_limited": "Too many requests; wait a moment",
      "err.not_found": "Not found",
      "err.method_not_allowed": "Operation not allowed",
      "err.invalid_transition": "The patient's status does not allow this action (another desk may have changed it)",
      "err.too_large": "Data too large",
      "err.request_timeout": "The data took too long to reach the server; nothing was changed, try again",
      "err.unsupported_media_type": "Unsupported data format",
      "err.invalid": "Invalid data",
      "err.invalid.name": "Invalid name: write 1 to 200 characters, with visible letters and no control characters",
      "err.invalid.colour": "This protocol has no such risk colour",
      "err.invalid.colours": "Choose colours of the protocol",
      "err.invalid.room": "This unit has no such room",
      "err.invalid.arrived_at": "Arrival time out of range: at most 24 h ago and not in the future",
      "err.invalid.birth_date": "Invalid date of birth: it must be between 1900 and today",
      "err.invalid.complaint": "Invalid complaint: at most 1000 characters, no control or text-direction characters",
      "err.invalid.document": "Invalid document: at most 32 characters, no control or text-direction characters",
      "err.invalid.note": "Invalid note: at most 1000 characters, no control or text-direction characters",
      "err.invalid.by": "Invalid name: write 1 to 100 characters, visible, no control or text-direction characters",
      "err.invalid.outcome": "Choose an outcome",
      "err.invalid.reason": "Choose a reason",
      "err.invalid.unit": "Invalid destination unit",
      "err.invalid.q": "Write what to look for",
      "err.invalid.contact.phone": "Invalid mobile number: write it with + and the country code, digits only (e.g. +5511987654321)",
      "err.invalid.contact.email": "Invalid e-mail: check the address (e.g. maria@example.com)",
      "err.unavailable": "The service cannot record changes right now; nothing was changed, try again shortly",
      "err.not_leader": "The service is switching to its other server; nothing was changed, try again shortly",
      "err.outcome_unknown": "The database did not confirm: the change may or may not have been kept. Check the patient before repeating it",
      "err.other": "Server error ({status})",
      "err.details": "Technical detail (for support): {detail}",
      "display.title": "Call board",
      "display.now": "Now calling",
      "display.none": "Waiting for calls",
      "display.recent": "Recent calls",
      "display.queues": "Waiting",
      "display.room": "Please go to",
      "display.sound.on": "Sound on",
      "display.sound.off": "Sound off",
      "display.sound.blocked": "Click to enable sound",
      "display.sound.hint": "The browser blocked sound: touch the screen once, or start it with --autoplay-policy=no-user-gesture-required to play without a touch.",
      "display.say": "Ticket {ticket}, {room}",
      "display.left": "Time left",
      "display.over": "Overdue by",
      "display.longest": "Longest wait: {d}",
      "display.empty": "Nobody",
      "reception.title": "Reception",
      "admit.title": "New admission",
      "admit.name": "Patient name",
      "admit.colour": "Risk classification",
      "admit.colour.none": "Awaiting triage (no colour)",
      "admit.colour.hint": "classification is the nurses' call",
      "admit.complaint": "Chief complaint",
      "admit.complaint.count": "{n} of {max} characters",
      "admit.complaint.full": "{max}-character limit: anything beyond it is not kept",
      "admit.arrived": "Arrival time",
      "admit.arrived.hint": "Blank: now",
      "admit.birth": "Date of birth",
      "admit.document": "ID document",
      "admit.optional": "optional",
      "admit.submit": "Admit patient",
      "admit.busy": "Admitting…",
      "admit.done": "Patient admitted",
      "admit.protocol": "Protocol",
      "admit.ticket": "Ticket",
      "admit.print": "Print receipt",
      "admit.new": "New admission",
      "admit.future": "The arrival time cannot be in the future.",
      "admit.name.missing": "Write the patient's name.",
      "protocol.copy": "Copy protocol",
      "protocol.copied": "Protocol {protocol} copied.",
      "receipt.title": "Visit receipt",
      "receipt.keep": "Keep this number: it is the proof of your visit.",
      "receipt.wait": "Wait for your ticket to be called on the screen.",
      "receipt.name": "Patient",
      "receipt.arrived": "Arrival",
      "receipt.colour": "Classification",
      "receipt.printed": "Issued at",
      "receipt.code": "Check code",
      "receipt.scan": "Follow your visit on your phone: point the camera at the QR code.",
      "receipt.or": "Or go to {url} and type in the protocol number and the code.",
      "receipt.qr": "QR code of the follow-up link of {ticket}",
      "receipt.reprint": "Print the receipt again",
      "contact.title": "Contact for messages",
      "contact.phone": "Mobile",
      "contact.phone.hint": "with + and the country code",
      "contact.email": "E-mail",
      "contact.consent": "Agrees to receive messages",
      "contact.consent.hint": "With consent, the patient is sent by {channels}: {what}.",
      "contact.consent.what.admitted": "the protocol number with the follow-up link",
      "contact.consent.what.called": "a message when called",
      "contact.consent.what.finished": "a message at the end of the visit",
      "contact.consent.off": "This service sends no messages: the contact is only kept on the patient's record.",
      "contact.consent.only.sms": "This service sends messages by SMS only: write the mobile number.",
      "contact.consent.only.email": "This service sends messages by e-mail only: write the e-mail.",
      "contact.channel.email": "e-mail",
      "contact.channel.sms": "SMS",
      "contact.consent.nochannel": "To send messages, write the mobile number or the e-mail.",
      "contact.yes": "agrees to messages",
      "contact.no": "does not agree to messages",
      "patient.contact": "Contact",
      "patient.code": "Code",
      "messages.title": "Messages to the patient",
      "messages.nocontact": "No contact: no message will be sent.",
      "messages.noconsent": "No consent: no message will be sent.",
      "messages.off": "This service sends no messages.",
      "messages.unreachable": "None of the service's message channels reaches this contact: no message will be sent.",
      "messages.none": "No message so far.",
      "messages.loading": "Looking up the messages…",
      "messages.channel.email": "E-mail",
      "messages.channel.sms": "SMS",
      "messages.event.admitted": "protocol and link",
      "messages.event.called": "call",
      "messages.event.finished": "end of the visit",
      "messages.state.pending": "sending…",
      "messages.state.delivered": "sent",
      "messages.state.failed": "could not be sent",
      "messages.attempts": "{n} attempts",
      "messages.error": "Cannot look up the messages right now.",
      "lookup.title": "Find a patient",
      "lookup.label": "Protocol, name, document or today's ticket",
      "lookup.submit": "Look up",
      "lookup.bad": "Write a protocol number (17 digits), a name, a document or a ticket.",
      "lookup.notfound": "Not found: no patient has this protocol number.",
      "lookup.none": "No patient found for “{q}”.",
      "lookup.results": "{n} found (latest arrival first)",
      "lookup.result.one": "1 found",
      "lookup.more": "Showing the latest 50; narrow the search.",
      "lookup.open": "Open",
      "lookup.open.label": "Open {ticket} ({name})",
      "search.label": "Find a patient",
      "search.placeholder": "Name, document or ticket",
      "search.submit": "Search",
      "search.title": "Search: “{q}”",
      "patient.status": "Status",
      "patient.unit": "Unit",
      "patient.arrived": "Arrival",
      "patient.waited": "Waited",
      "patient.position": "Place in queue",
      "patient.room": "Room",
      "patient.outcome": "Outcome",
      "patient.reason": "Reason for leaving",
      "patient.complaint": "Complaint",
      "patient.triage_note": "Triage note",
      "patient.age": "Age",
      "patient.document": "Document",
      "patient.protocol": "Protocol",
      "patient.due": "Target",
      "leave.reason": "Reason",
      "leave.submit": "Mark as left",
      "leave.title": "Mark as left",
      "leave.confirm": "{ticket} ({name}) will leave the queue with the reason “{reason}”. This cannot be undone.",
      "leave.ok": "Confirm leaving",
      "leave.done": "{ticket} marked as left.",
      "clinician.title": "Clinician",
      "callbar.label": "Call patients",
      "view.label": "View",
      "view.treatment": "Treatment",
      "view.triage": "Triage",
      "call.title": "Call next",
      "call.room": "Room",
      "call.colours": "Colours",
      "call.colours.all": "all",
      "call.colours.hint": "none ticked: all",
      "call.submit": "Call next",
      "call.triage.title": "Triage",
      "call.triage.submit": "Call to triage",
      "call.nobody": "Nobody is waiting in this queue.",
      "call.done": "{ticket} called to {room}.",
      "rooms.title": "In the rooms",
      "rooms.free": "free",
      "rooms.mine": "your room",
      "rooms.count": "{n} in rooms",
      "active.start": "Start treatment",
      "active.finish": "Finish",
      "active.outcome": "Outcome",
      "active.outcome.choose": "Choose the outcome…",
      "active.outcome.missing": "Choose the outcome before finishing.",
      "active.outcome.label": "Outcome for {ticket}",
      "active.noshow": "No-show",
      "active.recall": "Call again",
      "active.classify": "Classify",
      "active.gone": "{ticket}: {status}.",
      "finish.title": "Finish {ticket}",
      "finish.confirm": "Finish {ticket} ({name}) with the outcome “{outcome}”? This cannot be undone.",
      "finish.ok": "Finish as “{outcome}”",
      "noshow.title": "Last no-show of {ticket}",
      "noshow.confirm": "This is no-show {n} of {ticket} ({name}), the unit's limit. The patient will be marked as left (did not answer the calls) and leave the queue. This cannot be undone.",
      "noshow.ok": "Record no-show and leaving",
      "noshow.count": "no-shows: {n} of {max}",
      "queue.title": "Treatment queue",
      "queue.triage.title": "Triage queue",
      "queue.empty": "Nobody waiting.",
      "queue.total": "{n} waiting",
      "queue.partial": "Showing the first {n} of {total}, in queue order.",
      "list.moved": "The list changed just as you clicked: nothing was done. Check and click again.",
      "col.pos": "#",
      "col.ticket": "Ticket",
      "col.name": "Name",
      "col.patient": "Patient",
      "col.colour": "Colour",
      "col.complaint": "Complaint",
      "col.due": "Target",
      "col.actions": "Actions",
      "complaint.more": "show the whole complaint",
      "complaint.less": "show less",
      "retriage": "Re-triage",
      "retriage.title": "Re-triage {ticket} ({name})",
      "classify.title": "Classify {ticket} ({name})",
      "retriage.note": "Note",
      "retriage.submit": "Save classification",
      "retriage.choose": "Choose the classification's colour.",
      "transfer": "Transfer",
      "transfer.title": "Transfer {ticket} ({name})",
      "transfer.unit": "To unit",
      "transfer.submit": "Transfer",
      "transfer.none": "There is no other unit to transfer to.",
      "alerts.title": "Active alerts",
      "alerts.none": "No active alerts.",
      "alerts.forbidden": "Your role may not see alerts.",
      "alerts.ack": "Acknowledge",
      "alerts.ack.label": "Acknowledge the alert of {ticket}",
      "alerts.warning": "Warning",
      "alerts.breach": "Wait exceeded",
      "alerts.level": "level {n}",
      "alerts.acknowledged": "acknowledged",
      "alerts.by": "Acknowledging as {name}",
      "alerts.by.change": "change name",
      "who.title": "Who acknowledges the alerts?",
      "who.intro": "Your name is recorded on each alert you acknowledge. It is kept in this browser.",
      "who.label": "Your name",
      "who.submit": "Save",
      "who.missing": "Write your name to acknowledge alerts.",
      "done": "Done.",
    },
  };

  const lang = STRINGS[document.documentElement.lang] ? document.documentElement.lang : "pt-BR";
  const unit = document.body.dataset.unit;
  const unitName = document.body.dataset.unitName;

  /** The string `key` in the page's language, with `{name}` filled from `vars`;
   *  its `.one` form where the count (`total`, else `n`) is 1 and there is one. */
  function t(key, vars) {
    const count = vars ? Number(vars.total ?? vars.n) : NaN;
    if (count === 1 && (STRINGS[lang][key + ".one"] ?? STRINGS["pt-BR"][key + ".one"])) key += ".one";
    let s = STRINGS[lang][key] ?? STRINGS["pt-BR"][key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }
  const has = (key) => key in STRINGS[lang];
  /** A page's own strings, `{ "pt-BR": {…}, en: {…} }`, added to the shared ones. */
  function addStrings(more) {
    for (const [l, table] of Object.entries(more)) Object.assign(STRINGS[l] || (STRINGS[l] = {}), table);
  }

  /** Fills `data-i18n*` attributes under `root`. */
  function translate(root = document) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    for (const attr of ["placeholder", "title", "aria-label"]) {
      root.querySelectorAll(`[data-i18n-${attr}]`).forEach((el) => {
        el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
      });
    }
  }

  /** Creates an element: `h("td", {class: "x", onclick: f}, child, "text")`. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---- storage ----
  /** localStorage that never throws. A kiosk browser may block site storage
   *  (merely reading `window.localStorage` throws a SecurityError) or refuse
   *  a write (quota, private mode); what it refuses is kept in memory for the
   *  rest of the page's life, so the screen still works, only forgets on reload. */
  const storage = (() => {
    const memory = new Map(); // key -> value (null: removed) that storage refused
    const write = (key, value, op) => {
      try { op(window.localStorage); memory.delete(key); } catch (_) { memory.set(key, value); }
    };
    return {
      get(key) {
        if (memory.has(key)) return memory.get(key);
        try { return window.localStorage.getItem(key); } catch (_) { return null; }
      },
      set(key, value) {
        const v = String(value);
        write(key, v, (s) => s.setItem(key, v));
      },
      remove(key) { write(key, null, (s) => s.removeItem(key)); },
    };
  })();

  // ---- token ----
  const TOKEN_KEY = "triagem.token";
  const getToken = () => storage.get(TOKEN_KEY);
  const setToken = (v) => (v ? storage.set(TOKEN_KEY, v) : storage.remove(TOKEN_KEY));

  let asking = null;
  /** Shows the token dialog once, however many requests are waiting on it. */
  function askToken(reason) {
    if (asking) return asking;
    asking = new Promise((resolve, reject) => {
      const input = h("input", { type: "password", id: "token-input", autocomplete: "current-password", required: true, spellcheck: "false" });
      const err = h("p", { class: "error", role: "alert" }, reason || "");
      const dlg = h("dialog", { class: "token-dialog", "aria-labelledby": "token-title" },
        h("form", { method: "dialog", novalidate: true },
          h("h2", { id: "token-title" }, t("token.title")),
          h("p", {}, t("token.intro")),
          err,
          h("label", { for: "token-input" }, t("token.label")),
          input,
          h("div", { class: "actions" },
            h("button", { type: "submit", value: "ok", class: "primary" }, t("token.submit")),
            h("button", { type: "submit", value: "cancel", formnovalidate: true }, t("token.cancel")))));
      // An empty token is said in the page's words, not the browser's.
      dlg.querySelector("form").addEventListener("submit", (ev) => {
        if (ev.submitter?.value !== "ok" || input.value.trim()) return;
        ev.preventDefault();
        err.textContent = t("token.empty");
        input.setAttribute("aria-invalid", "true");
        input.focus();
      });
      document.body.append(dlg);
      dlg.addEventListener("close", () => {
        const value = input.value.trim();
        dlg.remove();
        asking = null;
        if (dlg.returnValue === "ok" && value) {
          setToken(value);
          const tb = document.getElementById("token-button");
          if (tb) tb.hidden = false;
          resolve(value);
        }
        else reject(new ApiError(401, "unauthorized", null, null, null, t("token.required")));
      });
      dlg.showModal();
      input.focus();
    });
    return asking;
  }

  // ---- API ----
  /** A failed request. `describe()` says it in the page's language from the
   *  problem's `code` and `field`; the server's `detail` (English, for
   *  integrators) is only kept for a tooltip and the console. */
  class ApiError extends Error {
    constructor(status, code, detail, title, field, words) {
      super(detail || title || code);
      this.status = status;
      this.code = code;
      this.detail = detail;
      this.title = title;
      this.field = field || null;
      this.words = words || null; // our own message, when we made the error
    }
    describe() {
      if (this.words) return this.words;
      if (this.code === "network") return t("err.network");
      if (this.code === "invalid" && this.field && has("err.invalid." + this.field)) return t("err.invalid." + this.field);
      if (has("err." + this.code) && this.code !== "other") return t("err." + this.code);
      return t("err.other", { status: this.status });
    }
    /** The server's own words, for a tooltip: never shown as the message. */
    hint() {
      return this.detail ? t("err.details", { detail: this.detail }) : null;
    }
  }

  /** The server's clock minus this machine's, from the `Date` of answers
   *  (kept steady: a change under 1.5 s is the header's resolution). */
  let clockOffset = 0;
  let clockKnown = false;
  function learnClock(res, sentAt) {
    const d = Date.parse(res.headers.get("Date") || "");
    if (isNaN(d)) return;
    const local = (sentAt + Date.now()) / 2;
    const offset = d + 500 - local; // the header drops the milliseconds
    if (!clockKnown || Math.abs(offset - clockOffset) > 1500) clockOffset = offset;
    clockKnown = true;
  }
  /** Now, on the server's clock (ms). */
  const now = () => Date.now() + clockOffset;
  /** Sets the server clock from a time the server just gave (ms). */
  function setServerTime(serverMs, localMs) {
    const offset = serverMs - localMs;
    if (!clockKnown || Math.abs(offset - clockOffset) > 1500) clockOffset = offset;
    clockKnown = true;
  }

  /** Calls the API: JSON in and out; a problem becomes an ApiError; a 401
   *  asks for a token and tries again. With `{ raw: true }` the answer's
   *  text is returned as it came (an SVG, a CSV). */
  async function api(method, path, body, extraHeaders, opts) {
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: "application/json", ...(extraHeaders || {}) };
      const token = getToken();
      if (token) headers.Authorization = "Bearer " + token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let res;
      const sentAt = Date.now();
      try {
        res = await fetch("/api/v1" + path, {
          method, headers, cache: "no-store",
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (_) {
        throw new ApiError(0, "network", null);
      }
      learnClock(res, sentAt);
      if (res.status === 204) return null;
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
      if (res.ok) return opts && opts.raw ? text : data;
      const p = data || {};
      const error = new ApiError(res.status, p.code || "other", p.detail || text.slice(0, 200), p.title, p.field);
      // For integrators: the service's own words, which the page never shows as its message.
      console.info(`Triagem API ${method} ${path}: ${res.status} ${error.code}${error.field ? " (" + error.field + ")" : ""}: ${error.detail || ""}`);
      if (res.status === 401 && attempt < 3) {
        if (token) setToken(null);
        await askToken(error.describe());
        continue;
      }
      throw error;
    }
  }

  /** An Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
  function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  /** The caller's name and role (`GET /session`); role null in open mode,
   *  and also when the server is too old to say (then the pages offer all). */
  let session = null;
  async function loadSession() {
    try {
      session = await api("GET", "/session");
    } catch (e) {
      if (e.status === 404 || e.status === 405) session = { name: null, role: null };
      else throw e;
    }
    return session;
  }
  /** Whether the caller's role may do `what` ("admit", "triage", "treatment", "alerts"). */
  function may(what) {
    const role = session && session.role;
    if (!role || role === "admin") return true;
    if (what === "triage") return role === "triage" || role === "clinician";
    if (what === "treatment" || what === "alerts") return role === "clinician";
    if (what === "admit") return ["reception", "triage", "clinician"].includes(role);
    return false;
  }

  // ---- messages ----
  /** Puts an error (ApiError or text) into `el`, in words; the server's detail
   *  goes to the element's tooltip only. Empty `e` clears it. */
  function errorTo(el, e) {
    if (!el) return;
    if (!e) { el.textContent = ""; el.hidden = true; el.removeAttribute("title"); return; }
    el.textContent = e instanceof ApiError ? e.describe() : String(e && e.message || e);
    const hint = e instanceof ApiError ? e.hint() : null;
    if (hint) el.title = hint; else el.removeAttribute("title");
    el.hidden = false;
  }

  let toastTimer = null;
  /** A message in the page's live region; errors stay until replaced. */
  function notify(message, kind = "info", hint) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.className = "notice " + kind;
    box.textContent = message;
    if (hint) box.title = hint; else box.removeAttribute("title");
    box.hidden = false;
    clearTimeout(toastTimer);
    if (kind !== "error") toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }
  function showError(e) {
    if (e instanceof ApiError) notify(e.describe(), "error", e.hint());
    else notify(String(e && e.message || e), "error");
  }

  // ---- dialogs ----
  let dialogs = 0;
  /** A modal dialog in the page's language: `body` (nodes), a confirm button
   *  and a cancel one. Resolves true when confirmed, false otherwise. */
  function confirmDialog({ title, message, ok, danger = true, cls = "" }) {
    return new Promise((resolve) => {
      const id = "confirm-title-" + (++dialogs);
      const yes = h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary" }, ok);
      const no = h("button", { type: "submit", value: "cancel", class: "cancel" }, t("back"));
      const dlg = h("dialog", { class: "confirm-dialog " + cls, "aria-labelledby": id, "aria-describedby": id + "-text" },
        h("form", { method: "dialog" },
          h("h2", { id }, title),
          h("p", { id: id + "-text", class: "confirm-text" }, message),
          h("div", { class: "actions" }, yes, no)));
      document.body.append(dlg);
      dlg.addEventListener("close", () => {
        dlg.remove();
        resolve(dlg.returnValue === "ok");
      });
      dlg.showModal();
      no.focus(); // the safe choice is the default one
    });
  }

  /** Asks for a line of text in a modal dialog; resolves the trimmed text or null. */
  function askText({ title, intro, label, value = "", maxlength = 100, submit, missing }) {
    return new Promise((resolve) => {
      const n = ++dialogs;
      const input = h("input", { id: `ask-${n}`, name: "value", value, maxlength, autocomplete: "name", required: true });
      const err = h("p", { class: "error", role: "alert", hidden: true });
      const form = h("form", { method: "dialog", novalidate: true },
        h("h2", { id: `ask-title-${n}` }, title),
        intro ? h("p", {}, intro) : null,
        h("label", { for: `ask-${n}` }, label), input, err,
        h("div", { class: "actions" },
          h("button", { type: "submit", value: "ok", class: "primary" }, submit),
          h("button", { type: "submit", value: "cancel", formnovalidate: true }, t("cancel"))));
      const dlg = h("dialog", { class: "ask-dialog", "aria-labelledby": `ask-title-${n}` }, form);
      form.addEventListener("submit", (ev) => {
        if (ev.submitter && ev.submitter.value === "ok" && !input.value.trim()) {
          ev.preventDefault();
          errorTo(err, missing);
          input.setAttribute("aria-invalid", "true");
          input.focus();
        }
      });
      document.body.append(dlg);
      dlg.addEventListener("close", () => {
        dlg.remove();
        resolve(dlg.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
      });
      dlg.showModal();
      input.focus();
    });
  }

  /** The token's role cannot use this page (its first reads answered 403):
   *  said in the dialog that takes another, instead of retrying for ever
   *  behind a "reconnecting" banner. Cancelled, the page stays as it is, and
   *  "Sign out" offers the dialog again. */
  async function wrongToken() {
    try {
      await askToken(t("token.role"));
      location.reload();
    } catch (_) { /* cancelled */ }
  }

  // ---- live events ----
  const EVENTS = ["admitted", "triaged", "called", "started", "no_show", "finished", "left", "transferred", "alert"];

  /** Follows the unit's event stream. `onEvent(name, data)` for each event,
   *  `onState(up)` when the stream goes down or comes back; before each
   *  (re)connection `probe()` runs (a fetch that also asks for a token on 401
   *  and reloads the page's data). Reconnects by itself with a short backoff. */
  function live({ onEvent, onState, probe }) {
    let es = null;
    let lastId = null;
    let delay = 500;
    let timer = null;
    let up = null;
    const setUp = (v) => {
      document.body.dataset.live = v ? "up" : "down";
      if (v !== up) { up = v; onState(v); }
    };

    async function connect() {
      timer = null;
      try {
        await probe();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          // The token dialog was dismissed: wait for a reload or a new token.
          // Not "reconnecting" (the service is there), and its banner would
          // cover the "Sign out" that offers the dialog again.
          onState(true);
          showError(e);
          return;
        }
        if (e instanceof ApiError && e.status === 403) {
          wrongToken();
          return;
        }
        setUp(false);
        if (e instanceof ApiError && e.code !== "network" && e.status !== 503) showError(e);
        return retry();
      }
      const params = new URLSearchParams();
      const token = getToken();
      if (token) params.set("access_token", token);
      if (lastId) params.set("last_event_id", lastId);
      const qs = params.toString();
      es = new EventSource(`/api/v1/units/${encodeURIComponent(unit)}/events${qs ? "?" + qs : ""}`);
      es.onopen = () => { delay = 500; setUp(true); };
      es.onerror = () => {
        // Take reconnection into our own hands: the browser gives up on a
        // non-200 answer (503 while the service recovers), and we want the
        // data reloaded on the way back.
        es.close();
        es = null;
        setUp(false);
        retry();
      };
      for (const name of EVENTS) {
        es.addEventListener(name, (ev) => {
          if (ev.lastEventId) lastId = ev.lastEventId;
          let data = {};
          try { data = JSON.parse(ev.data); } catch (_) { /* keep {} */ }
          onEvent(name, data);
        });
      }
    }
    function retry() {
      if (timer) return;
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 4000);
    }
    connect();
    return { reconnect() { if (es) { es.close(); es = null; } if (!timer) connect(); } };
  }

  // A click counts only when the press and the release land on the same
  // element: a list redrawn between them (a live event) swallows the click,
  // and a nurse's "acknowledge" or "call" is lost. So a container pressed in
  // is redrawn once the press is over (at most a few seconds later).
  let pressedIn = null; // the element a pointer is down on
  let presses = 0;
  const held = new Map(); // container -> the redraw it is waiting for
  document.addEventListener("pointerdown", (e) => {
    pressedIn = e.target;
    const press = ++presses;
    setTimeout(() => { if (press === presses) release(); }, 3000);
  }, true);
  function release() {
    if (!pressedIn) return;
    pressedIn = null;
    // In a task of its own: after the click this release dispatches.
    setTimeout(() => {
      const due = [...held.values()];
      held.clear();
      for (const draw of due) draw();
    });
  }
  document.addEventListener("pointerup", release, true);
  document.addEventListener("pointercancel", release, true);

  // A list that reorders between the moment a nurse aims and the moment she
  // clicks puts another patient's button under the pointer (a new breach
  // sorted to the top shifts every alert down a row): a click landing, just
  // after a redraw, on a button that is not the one that was at that spot is
  // not acted on, and the page says the list moved.
  const MOVED_MS = 800;
  const spots = new Map(); // container -> { at, buttons: [{ key, rect }] }
  function noteSpots(container) {
    const buttons = [...container.querySelectorAll("button[data-key]")]
      .map((b) => ({ key: b.dataset.key, rect: b.getBoundingClientRect() }))
      .filter((b) => b.rect.width > 0);
    spots.set(container, { at: performance.now(), buttons });
  }
  document.addEventListener("click", (e) => {
    // Keyboard activation (detail 0) goes to the focused control, wherever it is.
    if (!e.isTrusted || e.detail === 0) return;
    const button = e.target instanceof Element ? e.target.closest("button[data-key]") : null;
    if (!button) return;
    for (const [container, seen] of spots) {
      if (!container.contains(button) || performance.now() - seen.at > MOVED_MS) continue;
      const before = seen.buttons.find((b) => e.clientX >= b.rect.left && e.clientX <= b.rect.right &&
        e.clientY >= b.rect.top && e.clientY <= b.rect.bottom);
      if (before && before.key !== button.dataset.key) {
        e.preventDefault();
        e.stopImmediatePropagation();
        notify(t("list.moved"), "error");
      }
      return;
    }
  }, true);

  /** Whether the keyboard focus has fallen to the page (its control was
   *  disabled or replaced): the caller puts it back somewhere useful. */
  const focusLost = () => !document.activeElement || document.activeElement === document.body;

  /** Puts `children` (nodes, most of them already there) into `container`
   *  in order, moving only those out of place: a node left alone keeps its
   *  open list, its focus and any press on it (the rooms' cards, whose
   *  outcome list closed under the clinician's hand on every redraw). */
  function place(container, children) {
    if (pressedIn && container.contains(pressedIn)) {
      held.set(container, () => place(container, children));
      return;
    }
    held.delete(container);
    if (children.some((el, i) => container.children[i] !== el)) noteSpots(container);
    children.forEach((el, i) => {
      if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
    });
    while (container.children.length > children.length) container.lastElementChild.remove();
  }

  /** Re-renders `container` with `children` keeping keyboard focus: the
   *  element that had it comes back focused if an element with the same
   *  `data-key` is rendered again (live updates must not steal focus). Held
   *  while a pointer is down inside it (above). */
  function rerender(container, children) {
    if (pressedIn && container.contains(pressedIn)) {
      held.set(container, () => rerender(container, children));
      return;
    }
    held.delete(container);
    noteSpots(container);
    const active = document.activeElement;
    const key = active && container.contains(active) ? active.dataset.key : null;
    // Where it stood among the keyed controls: if its patient left the list
    // (called from another desk), the focus stays in the list at that place.
    const at = key ? [...container.querySelectorAll("[data-key]")].indexOf(active) : -1;
    container.replaceChildren(...children);
    if (key) {
      const keyed = [...container.querySelectorAll("[data-key]")];
      // The same control, or else another one for the same thing (a patient's
      // next action), or else the one now where it was.
      const again = keyed.find((el) => el.dataset.key === key) ||
        keyed.find((el) => el.dataset.key.split(":")[0] === key.split(":")[0]) ||
        keyed[Math.min(at, keyed.length - 1)];
      if (again) again.focus({ preventScroll: true });
    }
  }

  const THROTTLE_HOLD_MS = 10000;
  /** Returns a function that runs `fn` at most once per `ms` however often it
   *  is called, and always once more after the last call of a burst. Not a
   *  debounce: under a steady stream of events less than `ms` apart a
   *  debounce never fires, and the page would never refresh. A run that
   *  returns a promise holds the next one back until it settles, so refreshes
   *  do not overlap (an older answer cannot overwrite a newer one), but for
   *  at most THROTTLE_HOLD_MS, so a hung request cannot stop them. */
  function throttle(fn, ms) {
    let timer = null;     // a run is scheduled; it will see every call before it
    let running = false;  // a run has not settled yet
    let again = false;    // called during that run: run once more after it
    let last = -Infinity; // when the last run started (monotonic: a wall clock
                          // set back would stall the refreshes)
    function run() {
      timer = null;
      running = true;
      last = performance.now();
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(hold);
        running = false;
        if (again) { again = false; schedule(); }
      };
      const hold = setTimeout(settle, THROTTLE_HOLD_MS);
      Promise.resolve().then(fn).finally(settle);
    }
    function schedule() {
      if (running) { again = true; return; }
      if (timer) return;
      timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
    }
    return schedule;
  }

  // ---- protocol, units, formatting ----
  let protocol = { colours: [], triage_max_wait_seconds: 600 };
  let units = [];
  async function loadInfo() {
    [protocol, units] = await Promise.all([api("GET", "/protocol"), api("GET", "/units")]);
    return { protocol, units };
  }
  const colourInfo = (id) => protocol.colours.find((c) => c.id === id);
  /** A colour's label; the triage queue (no colour) has one name everywhere. */
  const colourLabel = (id) => (id ? (colourInfo(id)?.label ?? id) : t("queue.untriaged"));
  const targetSeconds = (id) => (id ? (colourInfo(id)?.max_wait_seconds ?? 0) : protocol.triage_max_wait_seconds);
  const KNOWN = ["red", "orange", "yellow", "green", "blue", "white", "black", "purple"];

  const colourClass = (id) => (id ? (KNOWN.includes(id) ? "c-" + id : "c-other") : "c-none");

  /** A colour chip: the colour and its written label, always together. */
  function chip(id, extra) {
    return h("span", { class: `chip ${colourClass(id)} ${extra || ""}` }, h("span", { class: "dot", "aria-hidden": "true" }), colourLabel(id));
  }

  /** "< 1 min", "12 min", "1 h 05 min" ("1h05" when `compact`). */
  function duration(seconds, compact) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return t("lt1min");
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} ${t("min")}`;
    if (m % 60 === 0) return `${m / 60} h`;
    const hh = Math.floor(m / 60);
    const mm = String(m % 60).padStart(2, "0");
    return compact ? t("hm.compact", { h: hh, m: mm }) : `${hh} h ${mm} ${t("min")}`;
  }
  const targetText = (seconds, compact) => (seconds === 0 ? t("immediate") : duration(seconds, compact));

  /** Time against a deadline, on the deadline's own clock: how long is left
   *  until `dueAt`, or how long ago it passed: `{ late, seconds, d, text }`
   *  (`d` the duration alone, `text` it in a phrase). */
  function due(dueAt, compact) {
    const left = (Date.parse(dueAt) - now()) / 1000;
    const late = left <= 0;
    const seconds = Math.abs(left);
    // Counted down like a timer: a minute shows until it is over ("2 h left"
    // until 1 h 59 min is left); the time overdue counts up like a wait.
    // The server's clock is known to about a second (the Date header has no
    // milliseconds), so a minute begun less than a second ago is not shown:
    // a 2 h target just set reads "2 h left", never "2 h 01 min".
    const shown = late ? seconds : Math.max(1, Math.ceil((seconds - 1) / 60)) * 60;
    const d = duration(shown, compact);
    return { late, seconds, d, text: t(late ? "due.over" : "due.left", { d }) };
  }
  /** Seconds since an instant, on the server's clock. */
  const since = (iso) => Math.max(0, (now() - Date.parse(iso)) / 1000);

  /** Age in whole years (months under one) from a `YYYY-MM-DD` birth date. */
  function age(birthDate) {
    if (!birthDate) return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birthDate);
    if (!m) return null;
    const today = new Date(now());
    let months = (today.getFullYear() - Number(m[1])) * 12 + (today.getMonth() + 1 - Number(m[2]));
    if (today.getDate() < Number(m[3])) months -= 1;
    if (months < 0) return null;
    if (months < 12) return months === 1 ? t("age.month") : t("age.months", { n: months });
    const years = Math.floor(months / 12);
    return years === 1 ? t("age.year") : t("age.years", { n: years });
  }

  /** A protocol number grouped for reading aloud (year, 9 digits, last 4) by
   *  spacing in CSS, not in the text: selecting and copying it gives the
   *  plain 17 digits, and it never breaks across lines. */
  function protocolEl(number, extra) {
    const n = String(number);
    const parts = n.length === 17 ? [n.slice(0, 4), n.slice(4, 13), n.slice(13)] : [n];
    return h("span", { class: "protocol " + (extra || ""), dataset: { protocol: n } },
      parts.map((p) => h("span", { class: "pg" }, p)));
  }
  /** Copies text to the clipboard, also where the async clipboard is not
   *  offered (plain http on a ward network). */
  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
    } catch (_) { /* fall back */ }
    const area = h("textarea", { class: "copy-buffer", readonly: true, "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    area.remove();
    return ok;
  }
  /** A copy button for a protocol number: copies the plain 17 digits. */
  function copyButton(number) {
    return h("button", { type: "button", class: "small copy", dataset: { copy: number }, "aria-label": t("protocol.copy") + " " + number,
      onclick: async () => {
        if (await copyText(number)) notify(t("protocol.copied", { protocol: number }), "ok");
      } }, h("span", { class: "ico i-copy", "aria-hidden": "true" }), t("protocol.copy"));
  }
  // Copying any part of a grouped protocol gives its digits only.
  document.addEventListener("copy", (ev) => {
    const sel = document.getSelection();
    if (!sel || sel.isCollapsed) return;
    const text = sel.toString();
    const digits = text.replace(/\s+/g, "");
    if (/^\d{17}$/.test(digits) && text !== digits) {
      ev.clipboardData.setData("text/plain", digits);
      ev.preventDefault();
    }
  });

  // Times in the service's zone (config `timezone`, from /protocol), not the
  // zone of the computer showing the page: a kiosk left on UTC shows the
  // same times as the receipt and the reports.
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", timeZone: protocol.timezone }) : "—");
  const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString(lang, { dateStyle: "short", timeStyle: "short", timeZone: protocol.timezone }) : "—");

  /** The language switch link and the token button in the header. */
  function setupHeader() {
    translate();
    const sw = document.getElementById("lang-switch");
    if (sw) {
      const url = new URL(location.href);
      url.searchParams.set("lang", lang === "en" ? "pt-BR" : "en");
      sw.href = url.pathname + url.search;
      sw.textContent = t("lang.switch");
      sw.lang = lang === "en" ? "pt-BR" : "en";
    }
    const tb = document.getElementById("token-button");
    if (tb) {
      tb.hidden = !getToken(); // only in tokens mode
      // Signing out reloads at once: on a shared PC the next person must not
      // find the last one's queue behind the token dialog, nor its stream
      // still updating it.
      tb.addEventListener("click", () => {
        setToken(null);
        location.reload();
      });
    }
    // Signed out in another tab of this browser: this one follows, or it
    // would go on showing (and streaming) the queue.
    window.addEventListener("storage", (e) => {
      if (e.key === TOKEN_KEY && !e.newValue) location.reload();
    });
  }

  return {
    lang, unit, unitName, t, has, addStrings, translate, h, api, ApiError, askToken, wrongToken, getToken, randomKey,
    notify, showError, errorTo, confirmDialog, askText, live, throttle, storage, rerender, place, focusLost, loadInfo,
    loadSession, may, chip, colourClass, colourLabel, colourInfo,
    targetSeconds, targetText, duration, due, since, age, now, setServerTime, protocolEl, copyText, copyButton,
    fmtTime, fmtDateTime, setupHeader,
    get protocol() { return protocol; }, get units() { return units; }, get session() { return session; },
  };
})();
