"""Screen texts in Finnish (default), Swedish and English, and number/time formats.

Every key in ``STRINGS`` has a text for every language in ``LANGUAGES``
(:mod:`kiosk.languages`); a test checks it. The formats come from
:func:`kiosk.languages.formats`. Texts are short on purpose: the panel is 128x64
pixels and is read at arm's length. ``{placeholders}`` are filled by :func:`text`.
"""

from __future__ import annotations

from datetime import datetime

from kiosk.languages import DEFAULT_LANGUAGE, LANGUAGES, Language, formats, language

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "STRINGS",
    "Language",
    "check_language",
    "format_amount",
    "format_clock",
    "format_duration",
    "format_time",
    "has",
    "text",
]

STRINGS: dict[str, dict[str, str]] = {
    # ready
    "ready.title": {"fi": "Näytä QR-koodi", "sv": "Visa QR-koden", "en": "Show QR\u00a0code"},
    "ready.sub": {
        "fi": "Kuitti tai maksukoodi",
        "sv": "Kvitto eller betalkod",
        "en": "Receipt or pay code",
    },
    # checking
    "checking.receipt": {"fi": "Tarkistetaan…", "sv": "Kontrollerar…", "en": "Checking…"},
    "checking.charge": {"fi": "Veloitetaan…", "sv": "Debiterar…", "en": "Charging…"},
    "checking.cancel": {"fi": "Perutaan…", "sv": "Annullerar…", "en": "Cancelling…"},
    "checking.wait": {"fi": "Odota hetki", "sv": "Vänta lite", "en": "Please wait"},
    # result headers
    "head.accepted": {"fi": "HYVÄKSYTTY", "sv": "GODKÄNT", "en": "ACCEPTED"},
    "head.offline": {"fi": "OFFLINE", "sv": "OFFLINE", "en": "OFFLINE"},
    "head.charged": {"fi": "VELOITETTU", "sv": "DEBITERAT", "en": "CHARGED"},
    "head.cancelled": {"fi": "PERUTTU", "sv": "ANNULLERAT", "en": "CANCELLED"},
    "head.refused": {"fi": "HYLÄTTY", "sv": "AVVISAT", "en": "REFUSED"},
    "head.notice": {"fi": "HUOMIO", "sv": "OBS", "en": "NOTICE"},
    # result details
    "paid_at": {"fi": "Maksettu {time}", "sv": "Betald {time}", "en": "Paid {time}"},
    "checked_offline": {
        "fi": "Tarkistettu offline",
        "sv": "Kontrollerad offline",
        "en": "Checked offline",
    },
    "told_at": {
        "fi": "Tieto saatu {time}",
        "sv": "Känt sedan {time}",
        "en": "Known since {time}",
    },
    "cancelled_at": {"fi": "Peruttu {time}", "sv": "Annullerad {time}", "en": "Cancelled {time}"},
    # refusals (word)
    "word.already_checked": {
        "fi": "Jo tarkistettu",
        "sv": "Redan kontrollerad",
        "en": "Already checked",
    },
    "already_checked.when": {"fi": "{time}, {by}", "sv": "{time}, {by}", "en": "{time}, {by}"},
    "word.cancelled": {
        "fi": "Maksu on peruttu",
        "sv": "Betalningen är annullerad",
        "en": "Payment was cancelled",
    },
    "word.wrong_venue": {
        "fi": "Toinen studio:",
        "sv": "Annan studio:",
        "en": "Another studio:",
    },
    "word.invalid": {"fi": "Virheellinen koodi", "sv": "Ogiltig kod", "en": "Invalid code"},
    "word.not_eligible": {"fi": "Ei kelpaa:", "sv": "Gäller inte:", "en": "Not eligible:"},
    "word.insufficient_funds": {
        "fi": "Saldo ei riitä",
        "sv": "Saldot räcker inte",
        "en": "Insufficient balance",
    },
    "balance": {"fi": "Saldo {amount}", "sv": "Saldo {amount}", "en": "Balance {amount}"},
    "word.paycode_used": {
        "fi": "Maksukoodi on jo käytetty",
        "sv": "Betalkoden är redan använd",
        "en": "Pay code already used",
    },
    "word.paycode_expired": {
        "fi": "Maksukoodi vanhentunut",
        "sv": "Betalkoden har gått ut",
        "en": "Pay code expired",
    },
    "new_code": {"fi": "Luo uusi koodi", "sv": "Skapa en ny kod", "en": "Create a new code"},
    "word.needs_network": {
        "fi": "Verkkoyhteys tarvitaan",
        "sv": "Nätverk behövs",
        "en": "Network needed",
    },
    "try_again": {"fi": "Yritä hetken päästä", "sv": "Försök snart igen", "en": "Try again soon"},
    "word.conflict": {
        "fi": "Tarkistettu myös toisaalla",
        "sv": "Kontrollerad på annat håll",
        "en": "Also checked elsewhere",
    },
    "conflict.note": {
        "fi": "Ilmoitettu palveluun",
        "sv": "Anmält till tjänsten",
        "en": "Reported to service",
    },
    # reasons that refine "invalid"
    "reason.not_smartum": {
        "fi": "Ei SmartumPay-koodi",
        "sv": "Inte en SmartumPay-kod",
        "en": "Not a SmartumPay code",
    },
    "reason.expired": {"fi": "Koodi vanhentunut", "sv": "Koden har gått ut", "en": "Code expired"},
    "reason.not_same_day": {
        "fi": "Vain saman päivän voi perua",
        "sv": "Bara samma dag kan annulleras",
        "en": "Only same-day can be cancelled",
    },
    "reason.already_cancelled": {
        "fi": "Jo peruttu",
        "sv": "Redan annullerad",
        "en": "Already cancelled",
    },
    "reason.not_found": {
        "fi": "Tapahtumaa ei löydy",
        "sv": "Transaktionen finns inte",
        "en": "Transaction not found",
    },
    # offline refusal reasons (shown under the word)
    "reason.limit_amount": {
        "fi": "Yli offline-rajan",
        "sv": "Över offlinegränsen",
        "en": "Over offline limit",
    },
    "reason.limit_total": {
        "fi": "Offline-summa täynnä",
        "sv": "Offlinetaket nått",
        "en": "Offline total reached",
    },
    "reason.limit_count": {
        "fi": "Offline-määrä täynnä",
        "sv": "För många offline",
        "en": "Too many offline",
    },
    "reason.stale_sync": {
        "fi": "Synkronointi myöhässä",
        "sv": "Synkningen för gammal",
        "en": "Last sync too old",
    },
    "reason.conflicts": {
        "fi": "Liikaa ristiriitoja 24 h:ssa",
        "sv": "För många konflikter på 24 h",
        "en": "Too many conflicts in 24 h",
    },
    "reason.journal": {"fi": "Tallennusvirhe", "sv": "Lagringsfel", "en": "Storage error"},
    "reason.disk_full": {"fi": "Muisti täynnä", "sv": "Minnet är fullt", "en": "Storage full"},
    # amount against the price list
    "head.check_amount": {
        "fi": "TARKISTA SUMMA",
        "sv": "KOLLA BELOPPET",
        "en": "CHECK THE AMOUNT",
    },
    "amount.paid": {"fi": "Maksettu {amount}", "sv": "Betalt {amount}", "en": "Paid {amount}"},
    "amount.nearest": {"fi": "{name}: {price}", "sv": "{name}: {price}", "en": "{name}: {price}"},
    "amount.difference": {"fi": "Ero {diff}", "sv": "Skillnad {diff}", "en": "Difference {diff}"},
    "amount.twice": {"fi": "2 × {name}", "sv": "2 × {name}", "en": "2 × {name}"},
    # still charging (slow backend)
    "still.charging": {
        "fi": "Veloitus kesken…",
        "sv": "Debiteringen pågår…",
        "en": "Still charging…",
    },
    "still.no_rescan": {
        "fi": "Älä skannaa uudelleen",
        "sv": "Skanna inte igen",
        "en": "Do not scan again",
    },
    # staff PIN for cancelling
    "pin.title": {"fi": "Peru: anna PIN", "sv": "Annullera: PIN", "en": "Cancel: staff PIN"},
    "pin.position": {"fi": "{n}. numero", "sv": "Siffra {n}", "en": "Digit {n}"},
    "pin.hold_back": {
        "fi": "Pitkä OK: takaisin",
        "sv": "Långt OK: tillbaka",
        "en": "Hold OK: back",
    },
    "pin.hold_erase": {"fi": "Pitkä OK: poista", "sv": "Långt OK: radera", "en": "Hold OK: erase"},
    "pin.hold_done": {"fi": "Pitkä OK: valmis", "sv": "Långt OK: klar", "en": "Hold OK: done"},
    "head.pin_wrong": {"fi": "VÄÄRÄ PIN", "sv": "FEL PIN", "en": "WRONG PIN"},
    "pin.tries_left": {
        "fi": "Yrityksiä jäljellä {n}",
        "sv": "{n} försök kvar",
        "en": "{n} tries left",
    },
    "pin.try_again": {
        "fi": "Paina nappia",
        "sv": "Tryck på en knapp",
        "en": "Press a button",
    },
    "head.locked": {"fi": "LUKITTU", "sv": "LÅST", "en": "LOCKED"},
    "pin.locked": {
        "fi": "Liian monta väärää PIN-koodia",
        "sv": "För många fel PIN-koder",
        "en": "Too many wrong PINs",
    },
    "pin.wait": {
        "fi": "Peruminen taas {time} päästä",
        "sv": "Annullering igen om {time}",
        "en": "Cancelling again in {time}",
    },
    "head.cancel": {"fi": "PERUMINEN", "sv": "ANNULLERING", "en": "CANCELLING"},
    "cancel.off": {
        "fi": "Peruminen ei ole käytössä tässä laitteessa",
        "sv": "Annullering är avstängd på den här enheten",
        "en": "Cancelling is off on this device",
    },
    "cancel.no_pin": {
        "fi": "Peruminen vaatii huollon asettaman PIN-koodin",
        "sv": "Annullering kräver en PIN-kod från teknikern",
        "en": "Cancelling needs a PIN set up by the technician",
    },
    # service selection and confirmations
    "menu.title": {"fi": "Valitse palvelu", "sv": "Välj tjänst", "en": "Choose service"},
    "menu.empty": {"fi": "Ei palveluita", "sv": "Inga tjänster", "en": "No services"},
    "menu.position": {"fi": "{n}/{of}", "sv": "{n}/{of}", "en": "{n}/{of}"},
    "confirm.charge": {
        "fi": "Veloita? Paina OK",
        "sv": "Debitera? Tryck OK",
        "en": "Charge? Press OK",
    },
    "confirm.cancel": {
        "fi": "Peru viimeisin?",
        "sv": "Annullera senaste?",
        "en": "Cancel last one?",
    },
    "confirm.keys": {
        "fi": "OK: kyllä  pitkä: ei",
        "sv": "OK: ja  långt: nej",
        "en": "OK: yes  hold: no",
    },
    # alarm
    "head.alarm": {"fi": "HÄIRIÖ", "sv": "FEL", "en": "FAULT"},
    "alarm.journal": {"fi": "Tallennusvirhe", "sv": "Lagringsfel", "en": "Storage error"},
    "alarm.disk_full": {"fi": "Muisti täynnä", "sv": "Minnet är fullt", "en": "Storage full"},
    "alarm.scanner": {"fi": "Lukija irti", "sv": "Läsaren saknas", "en": "Scanner missing"},
    "alarm.other": {"fi": "Laitevika", "sv": "Enhetsfel", "en": "Device fault"},
    "alarm.call": {"fi": "Kutsu huolto", "sv": "Kontakta service", "en": "Call service"},
    "alarm.salvaged": {
        "fi": "Pelastettu {n} riviä, menetetty {lost}",
        "sv": "Räddade {n} rader, förlorade {lost}",
        "en": "Salvaged {n} rows, lost {lost}",
    },
    # technician info
    "tech.online": {"fi": "online", "sv": "online", "en": "online"},
    "tech.offline": {"fi": "offline", "sv": "offline", "en": "offline"},
    "tech.ip": {"fi": "IP {ip}", "sv": "IP {ip}", "en": "IP {ip}"},
    "tech.version": {"fi": "Versio {v}", "sv": "Version {v}", "en": "Version {v}"},
    "tech.pending": {"fi": "Lähettämättä {n}", "sv": "Ej skickade {n}", "en": "Unsent {n}"},
    "tech.quarantined": {
        "fi": "Karanteenissa {n}",
        "sv": "I karantän {n}",
        "en": "Quarantined {n}",
    },
    "tech.salvaged": {
        "fi": "Tallenne: {n} talteen, {lost} menetetty",
        "sv": "Journal: {n} räddade, {lost} förlorade",
        "en": "Journal: {n} rows salvaged, {lost} lost",
    },
    "tech.offline_off": {
        "fi": "Offline estetty: {n} ristiriitaa 24 h",
        "sv": "Offline av: {n} konflikter på 24 h",
        "en": "Offline off: {n} conflicts in 24 h",
    },
    # the staff's day report (amounts in euros, the sign in the title)
    "report.title": {"fi": "RAPORTTI {day} €", "sv": "RAPPORT {day} €", "en": "REPORT {day} €"},
    "report.receipts": {"fi": "Kuitit", "sv": "Kvitton", "en": "Receipts"},
    "report.charges": {"fi": "Veloitukset", "sv": "Debiterat", "en": "Charges"},
    "report.cancels": {"fi": "Perutut", "sv": "Annullerade", "en": "Cancels"},
    "report.total": {"fi": "Yhteensä", "sv": "Totalt", "en": "Total"},
    "report.offline": {"fi": "Offline", "sv": "Offline", "en": "Offline"},
    "report.waiting": {
        "fi": "Lähettämättä",
        "sv": "Ej skickade",
        "en": "Not uploaded",
    },
    "report.conflicts": {"fi": "Ristiriidat", "sv": "Konflikter", "en": "Conflicts"},
    "report.late": {"fi": "Myöhässä", "sv": "Sena svar", "en": "Late answers"},
    "report.unmatched": {
        "fi": "Summa ei täsmää",
        "sv": "Belopp stämmer ej",
        "en": "Amount unmatched",
    },
    "report.count": {"fi": "{n} kpl", "sv": "{n} st", "en": "{n} pcs"},
    # out of service
    "out_of_service": {"fi": "Ei käytössä", "sv": "Ur funktion", "en": "Out of service"},
}


def check_language(lang: str) -> Language:
    """*lang* as a :class:`Language`. Raises ValueError naming the supported ones."""
    return language(lang)


def has(key: str) -> bool:
    """True if *key* is a known text key."""
    return key in STRINGS


def text(key: str, lang: str, **values: object) -> str:
    """The text for *key* in *lang* with ``{placeholders}`` filled. Raises KeyError."""
    template = STRINGS[key][check_language(lang)]
    return template.format(**values) if values else template


def format_amount(cents: int, lang: str) -> str:
    """Money in euros: fi/sv ``"1 234,50 €"`` (space groups thousands), en ``"€1,234.50"``."""
    f = formats(check_language(lang))
    euros, rest = divmod(abs(cents), 100)
    grouped = f"{euros:,}".replace(",", f.group)
    return f.money.format(sign="-" if cents < 0 else "", euros=grouped, cents=rest)


def format_time(dt: datetime, lang: str) -> str:
    """Clock time: fi ``"klo 14.05"``, sv ``"kl. 14.05"``, en ``"14:05"``."""
    return formats(check_language(lang)).time.format(h=dt.hour, m=dt.minute)


def format_duration(seconds: int, lang: str) -> str:
    """A wait: ``"4 min 05 s"`` in every language, ``"59 s"`` under a minute (no-break spaces)."""
    check_language(lang)
    minutes, rest = divmod(max(seconds, 0), 60)
    text = f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    return text.replace(" ", "\u00a0")  # never wrapped inside


def format_day(dt: datetime, lang: str) -> str:
    """A day, short: fi ``"6.12."``, sv ``"6/12"``, en ``"6 Dec"``."""
    mon = _MONTHS[dt.month - 1]
    return formats(check_language(lang)).day.format(d=dt.day, m=dt.month, mon=mon)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_clock(dt: datetime, lang: str) -> str:
    """Bare clock for the status row: fi/sv ``"9.05"``, en ``"09:05"``."""
    return formats(check_language(lang)).clock.format(h=dt.hour, m=dt.minute)
