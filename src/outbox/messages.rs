//! Messages to patients: their words (in `notifications.lang`), and the two
//! channels that carry them, e-mail over SMTP and SMS through an HTTP gateway.

use std::time::Duration;

use lettre::message::SinglePart;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};
use serde_json::json;

use super::{http_attempt, signature, Attempt, Entry, Sender, SIGNATURE_HEADER};
use crate::config::{EmailConfig, Lang, SmsConfig};
use crate::domain::{Channel, Message, NotifyEvent, Outbox};
use crate::service::{Service, ServiceError};

/// What a message says: a subject (for e-mail) and a text that fits one SMS
/// with a usual follow-up address and room: 160 characters of the GSM
/// alphabet, or 70 once one character is outside it ("í", "ó", "ã"), which is
/// why the finished notice says "encerrado".
pub fn words(m: &Message, lang: Lang) -> (String, String) {
    let room = m.room.as_deref().unwrap_or_default();
    let (p, t, url) = (m.protocol, &m.ticket, &m.follow_url);
    match (lang, m.event) {
        (Lang::PtBr, NotifyEvent::Admitted) => (
            format!("Protocolo {p}: senha {t}"),
            format!("Triagem: protocolo {p}, senha {t}. Acompanhe: {url}"),
        ),
        (Lang::PtBr, NotifyEvent::Called) => (
            format!("Protocolo {p}: senha {t} chamada"),
            format!("Senha {t}: é a sua vez. Local: {room}"),
        ),
        (Lang::PtBr, NotifyEvent::Finished) => (
            format!("Protocolo {p}: atendimento concluído"),
            format!("Atendimento encerrado. Protocolo {p}: guarde-o como comprovante."),
        ),
        (Lang::En, NotifyEvent::Admitted) => (
            format!("Protocol {p}: ticket {t}"),
            format!("Triagem: protocol {p}, ticket {t}. Follow: {url}"),
        ),
        (Lang::En, NotifyEvent::Called) => (
            format!("Protocol {p}: ticket {t} called"),
            format!("Ticket {t}: please go to {room}"),
        ),
        (Lang::En, NotifyEvent::Finished) => (
            format!("Protocol {p}: visit complete"),
            format!("Your visit is complete. Protocol {p}: keep it as proof of attendance."),
        ),
    }
}

/// A call notice the patient has moved on from is not sent (see
/// `Department::message_current`).
fn outdated(service: &Service, m: &Message) -> Option<String> {
    let current = service.read(|d, _| Ok(d.message_current(m)));
    // Unreadable (a reload): send it, as before; the next check decides.
    (!current.unwrap_or(true))
        .then(|| "not sent: the patient is no longer called to that room".into())
}

async fn next_message(
    service: &Service,
    channel: Channel,
) -> Result<Option<Entry<Message>>, ServiceError> {
    Ok(service.message_next(channel).await?.map(|e| Entry {
        id: e.id,
        delivery_id: e.delivery_id,
        attempts: e.attempts,
        outbox: Outbox::Message {
            channel,
            event: e.message.event,
        },
        item: e.message,
    }))
}

/// E-mail over SMTP.
pub(crate) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    lang: Lang,
    /// The limit of one attempt, the whole SMTP conversation.
    timeout: Duration,
}

impl Email {
    pub fn new(service: &Service, config: &EmailConfig) -> Result<Self, String> {
        let timeout = service.config().alerts.timeout;
        // lettre's timeout bounds the TCP connect only; `attempt` bounds the rest.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.as_str())
            .map_err(|e| format!("notifications.email.smtp_url: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from = config
            .from
            .as_str()
            .parse()
            .map_err(|e| format!("notifications.email.from: {e}"))?;
        Ok(Self {
            transport,
            from,
            lang: service.config().notifications.lang,
            timeout,
        })
    }
}

impl Sender for Email {
    type Item = Message;

    async fn next(&self, service: &Service) -> Result<Option<Entry<Message>>, ServiceError> {
        next_message(service, Channel::Email).await
    }

    async fn woken(&self, service: &Service) {
        service.messages_woken(Channel::Email).await;
    }

    fn outdated(&self, service: &Service, entry: &Entry<Message>) -> Option<String> {
        outdated(service, &entry.item)
    }

    async fn attempt(&self, entry: &Entry<Message>) -> Attempt {
        let (subject, text) = words(&entry.item, self.lang);
        // Non-ASCII needs SMTPUTF8, which lettre refuses to send without as a
        // client error, the same on every retry (admissions refuse such an
        // address now; older ones may be queued). Retried, it held every
        // later e-mail behind it.
        let to = match entry.item.to.parse::<lettre::message::Mailbox>() {
            Ok(to) if entry.item.to.is_ascii() => to,
            _ => return Attempt::Refused("the address is not one SMTP takes".into()),
        };
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            // The same on every attempt, so a receiver can tell a repeat.
            .message_id(Some(format!("<{}@triagem>", entry.delivery_id)))
            // A MIME part: `MIME-Version` and the charset with it.
            .singlepart(SinglePart::plain(text));
        let email = match email {
            Ok(e) => e,
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        // A server that accepts the connection and then says nothing (or stops
        // mid-conversation) would otherwise hold this channel's queue forever.
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => Attempt::Delivered,
            // 5xx: the server will never take it.
            Ok(Err(e)) if e.is_permanent() => Attempt::Refused(smtp_failure(&e)),
            // 4xx, a refused connection: later.
            Ok(Err(e)) => Attempt::Retry(smtp_failure(&e)),
            Err(_) => Attempt::Retry(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }
}

/// What is logged and kept of an SMTP failure. A server's reply often
/// repeats the recipient's address ("550 5.1.1 <maria@…>: unknown"), which
/// must reach no log, so of a reply only its code is kept.
fn smtp_failure(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) if e.is_permanent() => format!("SMTP {code} (permanent)"),
        Some(code) => format!("SMTP {code} (transient)"),
        None if e.is_response() => "SMTP reply not understood".into(),
        None if e.is_timeout() => "SMTP timeout".into(),
        None if e.is_tls() => "SMTP TLS failure".into(),
        // A connection's failure (refused, reset, name not found): no
        // address of a patient in it.
        None => e.to_string(),
    }
}

/// SMS through an HTTP gateway: `POST {"to", "text", "delivery_id", "event"}`,
/// signed like the alert webhooks when a secret is set.
pub(crate) struct Sms {
    config: SmsConfig,
    client: reqwest::Client,
    lang: Lang,
}

impl Sms {
    pub fn new(service: &Service, config: &SmsConfig) -> Result<Self, String> {
        let client = crate::outbox::delivery_client(service.config().alerts.timeout)
            .map_err(|e| format!("cannot build the SMS client: {e}"))?;
        Ok(Self {
            config: config.clone(),
            client,
            lang: service.config().notifications.lang,
        })
    }
}

impl Sender for Sms {
    type Item = Message;

    async fn next(&self, service: &Service) -> Result<Option<Entry<Message>>, ServiceError> {
        next_message(service, Channel::Sms).await
    }

    async fn woken(&self, service: &Service) {
        service.messages_woken(Channel::Sms).await;
    }

    fn outdated(&self, service: &Service, entry: &Entry<Message>) -> Option<String> {
        outdated(service, &entry.item)
    }

    async fn attempt(&self, entry: &Entry<Message>) -> Attempt {
        let (_, text) = words(&entry.item, self.lang);
        let body = json!({
            "to": entry.item.to,
            "text": text,
            "delivery_id": entry.delivery_id,
            "event": entry.item.event.as_str(),
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut req = self
            .client
            .post(self.config.url.as_url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Triagem-Delivery", &entry.delivery_id);
        if let Some(secret) = &self.config.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        http_attempt(req.body(body).send().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patient::Protocol;
    use crate::domain::UnitId;

    fn message(event: NotifyEvent) -> Message {
        Message {
            protocol: Protocol::new(2026, 42).unwrap(),
            unit: UnitId::parse("pa").unwrap(),
            channel: Channel::Sms,
            to: "+5511987654321".into(),
            event,
            ticket: "A012".into(),
            room: Some("Consultório 2".into()),
            follow_url: "https://triagem.hospital.example/p/20260000000000042#7KQ2MZ".into(),
        }
    }

    #[test]
    fn a_call_names_the_ticket_and_the_room() {
        let (_, text) = words(&message(NotifyEvent::Called), Lang::PtBr);
        assert_eq!(text, "Senha A012: é a sua vez. Local: Consultório 2");
        let (_, text) = words(&message(NotifyEvent::Called), Lang::En);
        assert_eq!(text, "Ticket A012: please go to Consultório 2");
    }

    /// Whether `text` goes as one SMS: 160 septets of the GSM 03.38 alphabet
    /// (its extension table's characters take two), else 70 UCS-2 characters.
    fn one_sms(text: &str) -> bool {
        const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                             ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
        const EXTENSION: &str = "^{}\\[~]|€\u{c}";
        let septets: Option<usize> = text
            .chars()
            .map(|c| match c {
                c if BASIC.contains(c) => Some(1),
                c if EXTENSION.contains(c) => Some(2),
                _ => None,
            })
            .sum();
        match septets {
            Some(n) => n <= 160,
            None => text.encode_utf16().count() <= 70,
        }
    }

    #[test]
    fn every_notice_fits_one_sms() {
        let called_to = |room: &str| Message {
            room: Some(room.into()),
            ..message(NotifyEvent::Called)
        };
        for lang in [Lang::PtBr, Lang::En] {
            for m in [
                message(NotifyEvent::Admitted),
                called_to("Consultório 2"),
                called_to("Consultório de Pediatria 12"),
                message(NotifyEvent::Finished),
            ] {
                let (_, text) = words(&m, lang);
                assert!(one_sms(&text), "two SMS: {text}");
            }
        }
        assert!(
            !one_sms(&"é".repeat(160).replace('é', "ó")),
            "UCS-2 counted"
        );
        assert!(one_sms(&"é".repeat(160)), "é is in the GSM alphabet");
    }

    #[test]
    fn an_admission_fits_one_sms_and_its_subject_carries_the_protocol() {
        for lang in [Lang::PtBr, Lang::En] {
            let (subject, text) = words(&message(NotifyEvent::Admitted), lang);
            assert!(subject.contains("20260000000000042"), "{subject}");
            assert!(
                text.contains("20260000000000042") && text.contains("A012"),
                "{text}"
            );
            assert!(text.contains("#7KQ2MZ"), "the follow link: {text}");
            assert!(
                text.chars().count() <= 160,
                "{} characters: {text}",
                text.len()
            );
        }
    }
}
