"""Contacts are shown masked everywhere except ``intake.get_contact``."""


def mask_phone(phone):
    """13812345678 -> 138****5678; landlines keep the area code and last four."""
    if not phone:
        return phone
    digits = phone.replace(" ", "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_email(email):
    """zhang.san@example.com -> z***@example.com"""
    if not email or "@" not in email:
        return email
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_address(address):
    return mask_email(address) if "@" in (address or "") else mask_phone(address)
