"""Domain logic: no boto3, requests or ldap3 here; adapters are passed in or imported lazily."""
